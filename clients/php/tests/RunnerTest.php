<?php

namespace Asynctask\Tests;

use App\Tasks\FailingTask;
use App\Tasks\NotAllowedTask;
use App\Tasks\ProgressTask;
use App\Tasks\WriteFileTask;
use PHPUnit\Framework\TestCase;

/** asynctask-php-runner on its own: allow-list, exit codes, database injection. */
final class RunnerTest extends TestCase
{
    private function runRunner(string $stdin, array $env, array $args = []): array
    {
        $runner = dirname(__DIR__) . '/bin/asynctask-php-runner';
        $env += ['PATH' => getenv('PATH'),
                 'ASYNCTASK_PHP_AUTOLOAD' => __DIR__ . '/fixtures/tasks.php',
                 'ASYNCTASK_PHP_CLASSES' => 'App\\Tasks\\WriteFileTask,App\\Tasks\\FailingTask,App\\Tasks\\ProgressTask'];
        $proc = proc_open(array_merge([PHP_BINARY, $runner], $args), [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes,
            null, $env);
        fwrite($pipes[0], $stdin);
        fclose($pipes[0]);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        return [proc_close($proc), $out, $err];
    }

    public function testAClassOffTheAllowListIsRefused(): void
    {
        @unlink('/tmp/asynctask-not-allowed-ran');
        [$rc, , $err] = $this->runRunner(serialize(new NotAllowedTask()), []);
        $this->assertSame(2, $rc);
        $this->assertStringContainsString('__PHP_Incomplete_Class', $err);
        $this->assertFileDoesNotExist('/tmp/asynctask-not-allowed-ran');
    }

    /**
     * A runner task with max_args > 0 would hand the client's arguments to the runner: they must not
     * choose the autoloader (any PHP file) nor widen the allow-list.
     */
    public function testArgumentsAreRefusedAndNothingIsLoaded(): void
    {
        $dir = sys_get_temp_dir() . '/asynctask-runner-args-' . getmypid();
        @mkdir($dir);
        $evil = "$dir/evil.php";
        $marker = "$dir/evil-ran";
        file_put_contents($evil, '<?php touch(' . var_export($marker, true) . ');');
        $task = serialize(new WriteFileTask("$dir/task-ran", 'x'));
        try {
            foreach ([["--autoload=$evil"], ['--autoload', $evil], ['--allow=App\\Tasks\\NotAllowedTask'],
                      ['a.png']] as $args) {
                [$rc, , $err] = $this->runRunner($task, [], $args);
                $this->assertFileDoesNotExist($marker, implode(' ', $args));
                $this->assertFileDoesNotExist("$dir/task-ran");
                $this->assertSame(2, $rc, implode(' ', $args));
                $this->assertStringContainsString('takes no arguments', $err);
            }
            // The same settings from the environment are the runner's ordinary configuration.
            [$rc, , $err] = $this->runRunner($task, ['ASYNCTASK_PHP_AUTOLOAD' => $evil]);
            $this->assertFileExists($marker, $err);
        } finally {
            foreach (glob("$dir/*") as $f) {
                unlink($f);
            }
            rmdir($dir);
        }
    }

    public function testGarbageIsRefused(): void
    {
        [$rc, , $err] = $this->runRunner('s:3:"abc";', []);
        $this->assertSame(2, $rc);
        $this->assertStringContainsString('does not hold an allowed AbstractTask', $err);
    }

    public function testAnExceptionExitsOne(): void
    {
        [$rc, , $err] = $this->runRunner(serialize(new FailingTask()) . "\n", []);
        $this->assertSame(1, $rc);
        $this->assertStringContainsString('this task always fails', $err);
    }

    public function testDatabaseDownExitsOneSoTheRunIsRetried(): void
    {
        $file = sys_get_temp_dir() . '/asynctask-runner-' . getmypid();
        [$rc, , $err] = $this->runRunner(serialize(new WriteFileTask($file, 'x')),
            ['ASYNCTASK_DB_DSN' => 'mysql:unix_socket=/nonexistent/mysqld.sock;dbname=x']);
        $this->assertSame(1, $rc);
        $this->assertStringContainsString('cannot connect to the database', $err);
        $this->assertFileDoesNotExist($file);
    }

    /** progress() sends STATUS= to the abstract socket in NOTIFY_SOCKET, one datagram a call. */
    public function testProgressReachesTheNotifySocket(): void
    {
        if (!function_exists('socket_create')) {
            $this->markTestSkipped('the sockets extension is not loaded');
        }
        $name = 'asynctask-php-test-' . getmypid();
        $sock = socket_create(AF_UNIX, SOCK_DGRAM, 0);
        $this->assertTrue(socket_bind($sock, "\0" . $name));
        try {
            [$rc, , $err] = $this->runRunner(serialize(new ProgressTask()), ['NOTIFY_SOCKET' => '@' . $name]);
            $this->assertSame(0, $rc, $err);
            socket_set_nonblock($sock);
            $got = [];
            while (($n = @socket_recv($sock, $buf, 4096, 0)) !== false && $n > 0) {
                $got[] = $buf;
            }
            $this->assertSame(['STATUS=10% one', 'STATUS=done two'], $got);
        } finally {
            socket_close($sock);
        }
        // Without a socket the task still runs: progress() just says it could not report.
        [$rc, , $err] = $this->runRunner(serialize(new ProgressTask()), []);
        $this->assertSame(1, $rc);
        $this->assertStringContainsString('progress was not sent', $err);
    }
}
