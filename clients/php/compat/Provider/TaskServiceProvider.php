<?php

namespace Wilson\Async\Provider;

use Illuminate\Support\ServiceProvider;
use Wilson\Async\Client\SwooleSender;

/**
 * The old package's Laravel provider, under its old name, so that its install steps keep working:
 * `php artisan vendor:publish --provider="Wilson\Async\Provider\TaskServiceProvider"` copies
 * config/swoole.php (the address of asynctaskd's TCP listener) into the application, where the
 * senders look for it. The container's "tasksender" is a sender, also reached through the
 * AsyncTask facade: AsyncTask::sendTask(new Lamb('Mary')), AsyncTask::sendCommand('...').
 */
class TaskServiceProvider extends ServiceProvider
{
    public function register()
    {
        // Opened on first use, then shared: one connection per application instance.
        $this->app->singleton('tasksender', function () {
            return new SwooleSender();
        });
    }

    public function boot()
    {
        $this->publishes([dirname(__DIR__) . '/config/swoole.php' => config_path('swoole.php')],
            'swoole-config');
    }
}
