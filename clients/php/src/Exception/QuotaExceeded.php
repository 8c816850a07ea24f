<?php

namespace Asynctask\Exception;

/**
 * The submitter already has as many unfinished tasks (or as many bytes of their stdin) as the server
 * allows it. Nothing was accepted; submit again once some of its tasks have finished.
 */
class QuotaExceeded extends AsynctaskException
{
}
