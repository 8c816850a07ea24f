<?php

namespace Wilson\Async\Facade;

use Illuminate\Support\Facades\Facade;

/** The old package's facade (alias AsyncTask): the container's "tasksender", a sender. */
class Instance extends Facade
{
    protected static function getFacadeAccessor()
    {
        return 'tasksender';
    }
}
