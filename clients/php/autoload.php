<?php
/*
 * PSR-4 autoloader for installs without Composer (and for the task runner, which must work before
 * the application's own autoloader is loaded). With Composer, vendor/autoload.php does the same.
 */
spl_autoload_register(static function (string $class): void {
    static $prefixes = [
        'Asynctask\\' => __DIR__ . '/src/',
        'Wilson\\Async\\' => __DIR__ . '/compat/',
    ];
    foreach ($prefixes as $prefix => $dir) {
        if (strncmp($class, $prefix, strlen($prefix)) === 0) {
            $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
            return;
        }
    }
});
