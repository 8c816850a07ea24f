<?php

namespace Asynctask\Exception;

/** The caller may not do this (forbidden). */
class Forbidden extends AsynctaskException
{
}
