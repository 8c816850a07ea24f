<?php

namespace Asynctask\Tests;

use App\Tasks\AppendLineTask;
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

    /** Every task record, through the JSON protocol (the test's user is an admin). */
    private function records(): array
    {
        $stream = stream_socket_client('unix://' . self::$f->unixSocket);
        fwrite($stream, json_encode(['op' => 'list', 'limit' => 10000]) . "\n");
        $answer = json_decode(fgets($stream), true);
        fclose($stream);
        $this->assertTrue($answer['ok'], json_encode($answer));
        return $answer['tasks'];
    }

    /** How many lines of each kind a file has. */
    private static function countLines(string $file): array
    {
        $counts = [];
        foreach (@file($file, FILE_IGNORE_NEW_LINES) ?: [] as $line) {
            $counts[$line] = ($counts[$line] ?? 0) + 1;
        }
        ksort($counts);
        return $counts;
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
        // A seed frame gets no answer (the old clients never read one): its record is found in the list.
        $known = array_column($this->records(), 'id');
        $sender = new CommonSender();
        $sender->sendTask(new FailingTask());
        unset($sender);
        $new = [];
        self::$f->waitFor(function () use ($known, &$new) {
            $new = array_values(array_filter($this->records(), function (array $t) use ($known) {
                return !in_array($t['id'], $known, true);
            }));
            return count($new) > 0;
        }, 'the failing task to be recorded');
        $this->assertCount(1, $new);
        $record = $this->client()->wait($new[0]['id'], 30.0);
        $this->assertSame('failed', $record['state']);
        $this->assertSame(1, $record['exit_status']);
        $this->assertSame('php-task', $record['task']);
    }

    public function testTheOldClientPatternLosesNoFrame(): void
    {
        // What code written for the old package does, unchanged: a sender per request, one fwrite()
        // per frame, never a read, close. Three senders of 3,000 commands and one task each, then
        // 1,000 senders of one command each: every frame is accepted and runs once.
        $runs = self::$f->evidence . '/old-client.runs';
        $before = $this->client()->stats()['submitted_total'];
        for ($i = 0; $i < 3; $i++) {
            $sender = new CommonSender();
            for ($j = 0; $j < 3000; $j++) {
                $sender->sendCommand(self::$f->countCommand('s'));
            }
            $sender->sendTask(new AppendLineTask($runs, 'o'));
            unset($sender);
        }
        for ($i = 0; $i < 1000; $i++) {
            (new CommonSender())->sendCommand(self::$f->countCommand('c'));
        }
        $want = ['c' => 1000, 'o' => 3, 's' => 9000];
        $client = $this->client();
        $settled = function () use ($client, $runs, $want, &$last) {
            $stats = $client->stats();
            $now = [$stats['submitted_total'], self::countLines($runs)];
            $idle = $now === $last && $stats['queued'] === 0 && $stats['running'] === 0;
            $last = $now;
            return $idle || $now[1] === $want;
        };
        $last = null;
        self::$f->waitFor(function () use ($settled) {
            usleep(500000);
            return $settled();
        }, 'the old client\'s frames to run', 900.0);
        $this->assertSame(['accepted' => 10003, 'runs' => $want],
            ['accepted' => $last[0] - $before, 'runs' => $last[1]]);
    }
}
