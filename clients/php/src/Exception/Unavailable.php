<?php

namespace Asynctask\Exception;

/** Temporary: store or launcher down, or the queue is full. Nothing was accepted; retry later. */
class Unavailable extends AsynctaskException
{
}
