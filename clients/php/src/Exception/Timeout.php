<?php

namespace Asynctask\Exception;

/** No answer within the client's read timeout. */
class Timeout extends AsynctaskException
{
}
