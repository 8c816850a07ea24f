<?php

namespace Asynctask\Tests;

/**
 * Starts the real asynctask-launcher and asynctaskd (direct executor, memory store) and a private
 * MariaDB for the tests, in one temporary directory, and stops them again.
 */
final class DaemonFixture
{
    /** @var string */
    public $dir;
    /** @var string */
    public $evidence;
    /** @var int */
    public $port;
    /** @var string */
    public $unixSocket;
    /** @var resource[] */
    private $procs = [];
    /** @var string */
    private $repo;
    /** @var string */
    private $build;

    /** @var DaemonFixture|null */
    private static $shared;

    /** One set of daemons for the whole run (started on first use, stopped at exit). */
    public static function shared(): self
    {
        if (!self::$shared) {
            $fixture = new self();
            register_shutdown_function(function () use ($fixture) {
                $fixture->stop();
            });
            $fixture->start($fixture->startMariadb());
            self::$shared = $fixture;
        }
        return self::$shared;
    }

    public function __construct()
    {
        $this->repo = dirname(__DIR__, 3);
        $this->build = getenv('ASYNCTASK_BUILDDIR') ?: $this->repo . '/build';
        foreach (['asynctaskd', 'asynctask-launcher'] as $bin) {
            if (!is_executable("{$this->build}/$bin")) {
                throw new \RuntimeException("{$this->build}/$bin is missing: run make first");
            }
        }
        $this->dir = sys_get_temp_dir() . '/asynctask-php-' . getmypid() . '-' . bin2hex(random_bytes(3));
        mkdir($this->dir, 0755, true);
        chmod($this->dir, 0755);
        $this->evidence = $this->dir . '/evidence';
        mkdir($this->evidence);
        chmod($this->evidence, 01777);
        $this->unixSocket = $this->dir . '/front.sock';
        $this->port = self::freePort();
    }

    public static function freePort(): int
    {
        $server = stream_socket_server('tcp://127.0.0.1:0');
        $name = stream_socket_get_name($server, false);
        fclose($server);
        return (int) substr($name, strrpos($name, ':') + 1);
    }

    public function startMariadb(): string
    {
        $out = [];
        exec(escapeshellarg($this->repo . '/tests/lib/mariadb-server') . ' start ' . escapeshellarg($this->dir . '/mariadb')
            . ' 2>&1', $out, $rc);
        if ($rc !== 0) {
            throw new \RuntimeException("cannot start MariaDB:\n" . implode("\n", $out));
        }
        return $this->dir . '/mariadb/mysqld.sock';
    }

    /** A listed command that appends $mark to evidence/old-client.runs, so that runs can be counted. */
    public function countCommand(string $mark): string
    {
        return "echo $mark >> {$this->evidence}/old-client.runs";
    }

    /** Writes the config and starts both daemons; $mysqlSocket enables the PHP task's PDO. */
    public function start(string $mysqlSocket): void
    {
        $runUser = posix_geteuid() === 0 ? 'nobody' : posix_getpwuid(posix_geteuid())['name'];
        $runner = $this->repo . '/clients/php/bin/asynctask-php-runner';
        // The launcher reads only config files no one but their owner may write, whatever the umask.
        mkdir($this->dir . '/tasks.d');
        chmod($this->dir . '/tasks.d', 0755);
        $config = [
            'launcher' => $this->dir . '/launcher.sock',
            'executor' => 'direct',
            'admins' => ['users' => ['root', posix_getpwuid(posix_geteuid())['name']]],
            'commands' => [
                ['cmd' => 'touch ' . $this->evidence . '/old-command', 'user' => $runUser,
                 'allow' => ['networks' => ['127.0.0.1/32']]],
                ['cmd' => 'touch ' . $this->evidence . '/new-command', 'user' => $runUser,
                 'allow' => ['users' => [posix_geteuid()]]],
                ['cmd' => $this->countCommand('s'), 'user' => $runUser, 'allow' => ['networks' => ['127.0.0.1/32']]],
                ['cmd' => $this->countCommand('c'), 'user' => $runUser, 'allow' => ['networks' => ['127.0.0.1/32']]],
            ],
            'php_classes' => ['App\\Tasks\\WriteFileTask' => 'php-task', 'App\\Tasks\\FailingTask' => 'php-task',
                              'App\\Tasks\\NotAllowedTask' => 'php-task', 'App\\Tasks\\AppendLineTask' => 'php-task'],
        ];
        $allowLocal = ['users' => [posix_geteuid()], 'networks' => ['127.0.0.1/32']];
        $tasks = [
            'php-task' => [
                'exec' => [PHP_BINARY, $runner],
                'user' => $runUser,
                'environment' => [
                    'ASYNCTASK_PHP_AUTOLOAD' => $this->repo . '/clients/php/tests/fixtures/tasks.php',
                    'ASYNCTASK_PHP_CLASSES' => 'App\\Tasks\\WriteFileTask,App\\Tasks\\FailingTask,App\\Tasks\\AppendLineTask',
                    'ASYNCTASK_DB_DSN' => "mysql:unix_socket=$mysqlSocket;dbname=asynctask",
                    'ASYNCTASK_DB_USER' => 'asynctask',
                    'ASYNCTASK_DB_PASSWORD' => 'test-password',
                ],
                'allow' => $allowLocal,
            ],
            'echo-args' => [
                'exec' => ['/bin/sh', '-c', 'printf "%s\n" "$@" > ' . $this->evidence . '/args-$ASYNCTASK_ID; cat > '
                    . $this->evidence . '/stdin-$ASYNCTASK_ID', 'echo-args'],
                'max_args' => 8,
                'user' => $runUser,
                'allow' => $allowLocal,
            ],
            'sleep' => [
                'exec' => ['/bin/sleep'],
                'max_args' => 1,
                'user' => $runUser,
                'allow' => $allowLocal,
            ],
            'exit' => [
                'exec' => ['/bin/sh', '-c', 'exit "$1"', 'exit'],
                'max_args' => 1,
                'user' => $runUser,
                'allow' => $allowLocal,
            ],
            'remote-only' => [
                'exec' => ['/bin/true'],
                'user' => $runUser,
                'allow' => ['networks' => ['192.0.2.0/24']],
            ],
        ];
        file_put_contents($this->dir . '/asynctask.json', json_encode($config, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));
        chmod($this->dir . '/asynctask.json', 0644);
        foreach ($tasks as $name => $task) {
            file_put_contents("{$this->dir}/tasks.d/$name.json",
                json_encode(['name' => $name] + $task, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));
            chmod("{$this->dir}/tasks.d/$name.json", 0644);
        }
        // The old clients' config, found through CodeIgniter's APPPATH as they looked it up.
        mkdir($this->dir . '/app/config', 0755, true);
        file_put_contents($this->dir . '/app/config/swoole.php',
            "<?php\nreturn ['ip' => '127.0.0.1', 'swoole_task_server_port' => {$this->port}];\n");

        $this->spawn('launcher', [$this->build . '/asynctask-launcher', '--config', $this->dir . '/asynctask.json',
            '--listen', 'unix:' . $this->dir . '/launcher.sock']);
        $this->waitFor(function () {
            return file_exists($this->dir . '/launcher.sock');
        }, 'launcher socket');
        $this->spawn('front', [$this->build . '/asynctaskd', '--config', $this->dir . '/asynctask.json',
            '--listen', 'unix:' . $this->unixSocket, '--listen', 'tcp:127.0.0.1:' . $this->port]);
        $this->waitFor(function () {
            try {
                return (new \Asynctask\Client('unix://' . $this->unixSocket, 0.5, 1.0))->ping();
            } catch (\Throwable $e) {
                return false;
            }
        }, 'asynctaskd to answer ping');
    }

    private function spawn(string $name, array $argv): void
    {
        $log = fopen("{$this->dir}/$name.log", 'a');
        $proc = proc_open($argv, [0 => ['file', '/dev/null', 'r'], 1 => $log, 2 => $log], $pipes);
        if (!is_resource($proc)) {
            throw new \RuntimeException("cannot start $name");
        }
        $this->procs[$name] = $proc;
    }

    public function pid(string $name): int
    {
        return proc_get_status($this->procs[$name])['pid'];
    }

    public function signal(string $name, int $signal): void
    {
        posix_kill($this->pid($name), $signal);
    }

    public function stopProcess(string $name): void
    {
        if (!isset($this->procs[$name])) {
            return;
        }
        $proc = $this->procs[$name];
        unset($this->procs[$name]);
        $status = proc_get_status($proc);
        if ($status['running']) {
            posix_kill($status['pid'], SIGCONT);
            posix_kill($status['pid'], SIGTERM);
            $deadline = microtime(true) + 5;
            while (proc_get_status($proc)['running'] && microtime(true) < $deadline) {
                usleep(20000);
            }
            if (proc_get_status($proc)['running']) {
                posix_kill($status['pid'], SIGKILL);
            }
        }
        proc_close($proc);
    }

    public function log(string $name): string
    {
        return (string) @file_get_contents("{$this->dir}/$name.log");
    }

    public function stop(): void
    {
        $this->stopProcess('front');
        $this->stopProcess('launcher');
        exec(escapeshellarg($this->repo . '/tests/lib/mariadb-server') . ' stop ' . escapeshellarg($this->dir . '/mariadb'));
        exec('rm -rf ' . escapeshellarg($this->dir));
    }

    public function waitFor(callable $condition, string $what, float $timeout = 15.0): void
    {
        $deadline = microtime(true) + $timeout;
        for (;;) {
            // PHP caches a file's stat: a file first seen while still empty would stay empty to filesize().
            clearstatcache();
            if ($condition()) {
                return;
            }
            if (microtime(true) > $deadline) {
                throw new \RuntimeException("timed out waiting for $what\nfront log:\n" . $this->log('front')
                    . "\nlauncher log:\n" . $this->log('launcher'));
            }
            usleep(20000);
        }
    }
}
