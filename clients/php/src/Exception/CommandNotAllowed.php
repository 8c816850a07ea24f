<?php

namespace Asynctask\Exception;

/** The raw command is not on the server's reviewed list (command_not_allowed). */
class CommandNotAllowed extends AsynctaskException
{
}
