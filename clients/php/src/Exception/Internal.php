<?php

namespace Asynctask\Exception;

/** The server failed (internal). */
class Internal extends AsynctaskException
{
}
