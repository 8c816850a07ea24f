<?php

namespace Asynctask\Exception;

/** The client could not connect, or the connection broke. */
class ConnectionFailed extends AsynctaskException
{
}
