<?php

namespace Asynctask\Exception;

/** The request was malformed or broke a limit (bad_request, bad_frame, frame_too_large). */
class BadRequest extends AsynctaskException
{
}
