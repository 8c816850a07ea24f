<?php

namespace Asynctask\Exception;

/** No task with that id (not_found). */
class NotFound extends AsynctaskException
{
}
