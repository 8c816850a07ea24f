<?php

namespace Asynctask\Tests;

use App\Tasks\FailingTask;
use App\Tasks\WriteFileTask;
use Asynctask\Client;
use PHPUnit\Framework\TestCase;
use Wilson\Async\Client\CommonSender;
use Wilson\Async\Client\SwooleSender;

/** Code written for the old async-task package, unchanged, against asynctaskd. */
final class CompatTest extends TestCase
{
    /** @var DaemonFixture */
    private static $f;

    public static function setUpBeforeClass(): void
    {
        self::$f = DaemonFixture::shared();
        // The old package finds its settings in a CodeIgniter application's config/swoole.php.
        if (!defined('APPPATH')) {
            define('APPPATH', self::$f->dir . '/app/');
        }
    }

    private function client(): Client
    {
        return new Client('unix://' . self::$f->unixSocket);
    }

    public function testCommonSenderSendCommandRunsTheListedCommand(): void
    {
        $file = self::$f->evidence . '/old-command';
        $sender = new CommonSender();
        $cmd = 'touch ' . $file;
        $this->assertSame(strlen(serialize($cmd)) + 1, $sender->sendCommand($cmd));
        unset($sender);
        self::$f->waitFor(function () use ($file) {
            return file_exists($file);
        }, 'the listed command to run');
        $this->assertFileExists($file);
    }

    public function testSwooleSenderWorksWithoutTheExtension(): void
    {
        $this->assertFalse(class_exists('\Swoole\Client'), 'this test is about running without Swoole');
        $file = self::$f->evidence . '/old-command';
        @unlink($file);
        (new SwooleSender())->sendCommand('touch ' . $file);
        self::$f->waitFor(function () use ($file) {
            return file_exists($file);
        }, 'the listed command to run via SwooleSender');
        $this->assertFileExists($file);
    }

    public function testSendersWriteExactlyTheOldBytes(): void
    {
        // A stand-in server on the configured port records what the senders write.
        $port = DaemonFixture::freePort();
        $dir = sys_get_temp_dir() . '/asynctask-bytes-' . getmypid();
        @mkdir($dir . '/config', 0755, true);
        file_put_contents("$dir/config/swoole.php", "<?php return ['ip' => '127.0.0.1', 'swoole_task_server_port' => $port];");
        $server = stream_socket_server("tcp://127.0.0.1:$port");
        $task = new WriteFileTask('/nonexistent', "text with \"quotes\"\nand a newline");
        $sender = new class ($dir) extends CommonSender {
            private $configDir;

            public function __construct(string $configDir)
            {
                $this->configDir = $configDir;
                parent::__construct();
            }

            protected function getConfig(): array
            {
                return require $this->configDir . '/config/swoole.php';
            }
        };
        $conn = stream_socket_accept($server, 2);
        $sender->sendCommand('echo "hello world"');
        $sender->sendTask($task);
        unset($sender);
        $received = stream_get_contents($conn);
        $expected = serialize('echo "hello world"') . PHP_EOL . serialize($task) . PHP_EOL;
        $this->assertSame($expected, $received);
        fclose($conn);
        fclose($server);
        exec('rm -rf ' . escapeshellarg($dir));
    }

    public function testSendTaskRunsHandlerWithAnInjectedPdo(): void
    {
        $file = self::$f->evidence . '/php-task-output';
        $sender = new CommonSender();
        $sender->sendTask(new WriteFileTask($file, 'little lamb'));
        unset($sender);
        self::$f->waitFor(function () use ($file) {
            return file_exists($file) && filesize($file) > 0;
        }, 'the PHP task to write its file');
        $this->assertSame('little lamb:42:PDO', file_get_contents($file));
    }

    public function testAFailingTaskIsRecordedAsFailed(): void
    {
        // The frame the old sendTask() writes (its protected $db property name holds NUL bytes, so it
        // cannot travel as a JSON string); read the answer the old clients ignore, to get the id.
        $stream = stream_socket_client('unix://' . self::$f->unixSocket);
        fwrite($stream, serialize(new FailingTask()) . PHP_EOL);
        $answer = json_decode(fgets($stream), true);
        fclose($stream);
        $this->assertTrue($answer['ok'], json_encode($answer));
        $record = $this->client()->wait($answer['id'], 30.0);
        $this->assertSame('failed', $record['state']);
        $this->assertSame(1, $record['exit_status']);
        $this->assertSame('php-task', $record['task']);
    }
}
