<?php

namespace Asynctask\Exception;

/** No task of that name is configured (unknown_task). */
class UnknownTask extends AsynctaskException
{
}
