<?php

namespace Asynctask\Tests;

use Asynctask\Client;
use Illuminate\Foundation\Application;
use Illuminate\Support\Facades\Facade;
use PHPUnit\Framework\TestCase;
use Wilson\Async\Client\SwooleSender;
use Wilson\Async\Provider\TaskServiceProvider;

/**
 * The package in a Laravel application (the stand-in in fixtures/laravel.php): discovered from
 * composer.json, and the old package's install step,
 * `php artisan vendor:publish --provider="Wilson\Async\Provider\TaskServiceProvider"`.
 *
 * @runTestsInSeparateProcesses
 * @preserveGlobalState disabled
 */
final class LaravelProviderTest extends TestCase
{
    /** @var string */
    private $base;
    /** @var Application */
    private $app;
    /** @var array */
    private $providers;

    protected function setUp(): void
    {
        require_once __DIR__ . '/fixtures/laravel.php';
        $this->base = sys_get_temp_dir() . '/asynctask-laravel-' . getmypid();
        mkdir($this->base . '/config', 0755, true);
        $this->app = new Application($this->base);
        Facade::setFacadeApplication($this->app);
        $composer = json_decode(file_get_contents(dirname(__DIR__) . '/composer.json'), true);
        $this->providers = $this->app->discover($composer['extra']['laravel']);
    }

    protected function tearDown(): void
    {
        exec('rm -rf ' . escapeshellarg($this->base));
    }

    public function testDiscoveryRegistersTheOldProviderAndFacade(): void
    {
        $classes = array_map('get_class', $this->providers);
        $this->assertContains(TaskServiceProvider::class, $classes);
        $this->assertTrue($this->app->bound('tasksender'));
        // Bound, not yet built: a sender connects when the application first uses it.
        $this->assertFalse($this->app->resolved('tasksender'));
        $this->assertSame('Wilson\Async\Facade\Instance', (new \ReflectionClass('AsyncTask'))->getName());
        // The project's own provider is discovered next to it.
        $this->assertInstanceOf(Client::class, $this->app->make(Client::class));
    }

    public function testVendorPublishCopiesTheOldConfig(): void
    {
        $copied = $this->app->publish(TaskServiceProvider::class);
        $compatConfig = realpath(dirname(__DIR__) . '/compat/config/swoole.php');
        $this->assertSame([$this->base . '/config/swoole.php'], array_values($copied));
        $this->assertSame($compatConfig, realpath(array_keys($copied)[0]));
        $this->assertFileEquals($compatConfig, $this->base . '/config/swoole.php');
        $published = require $this->base . '/config/swoole.php';
        $this->assertSame(['ip' => '127.0.0.1', 'swoole_task_server_port' => 9501], $published);
        // Only the old package's file: the project's config/asynctask.php has a tag of its own.
        $this->assertFileDoesNotExist($this->base . '/config/asynctask.php');
        // As for Laravel's command, a second run leaves the application's edited copy alone.
        file_put_contents($this->base . '/config/swoole.php', "<?php return ['ip' => '10.0.0.1'];");
        $this->assertSame([], $this->app->publish(TaskServiceProvider::class));
    }

    public function testTheFacadeSendsWithThePublishedConfig(): void
    {
        $this->app->publish(TaskServiceProvider::class);
        // The administrator points the published file at a stand-in server that records the bytes.
        $port = DaemonFixture::freePort();
        $file = $this->base . '/config/swoole.php';
        file_put_contents($file, str_replace('9501', (string) $port, file_get_contents($file)));
        $server = stream_socket_server("tcp://127.0.0.1:$port");

        $command = 'echo "hello world"';
        $this->assertSame(strlen(serialize($command)) + 1, \AsyncTask::sendCommand($command));
        $sender = $this->app->make('tasksender');
        $this->assertInstanceOf(SwooleSender::class, $sender);
        $this->assertSame($sender, \AsyncTask::getFacadeRoot());

        $conn = stream_socket_accept($server, 2);
        $this->assertNotFalse($conn, 'the sender did not connect to the published address');
        stream_set_timeout($conn, 2);
        $expected = serialize($command) . PHP_EOL;
        $received = '';
        while (strlen($received) < strlen($expected) && ($chunk = fread($conn, 8192)) !== false && $chunk !== '') {
            $received .= $chunk;
        }
        $this->assertSame($expected, $received);
        fclose($conn);
        fclose($server);
    }
}
