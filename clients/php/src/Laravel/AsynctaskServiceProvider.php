<?php

namespace Asynctask\Laravel;

use Asynctask\Client;
use Illuminate\Support\ServiceProvider;

/**
 * Binds Asynctask\Client from config/asynctask.php (publish it with
 * `php artisan vendor:publish --tag=asynctask-config`), so that
 * app(Asynctask\Client::class)->submit('resize', [...]) works anywhere in the application.
 */
class AsynctaskServiceProvider extends ServiceProvider
{
    public function register()
    {
        $this->mergeConfigFrom(dirname(__DIR__, 2) . '/config/asynctask.php', 'asynctask');
        $this->app->singleton(Client::class, function ($app) {
            $config = $app['config']['asynctask'];
            return new Client($config['address'], (float) $config['connect_timeout'],
                (float) $config['read_timeout']);
        });
    }

    public function boot()
    {
        $this->publishes([dirname(__DIR__, 2) . '/config/asynctask.php' => config_path('asynctask.php')],
            'asynctask-config');
    }
}
