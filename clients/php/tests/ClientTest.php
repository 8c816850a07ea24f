<?php

namespace Asynctask\Tests;

use Asynctask\Client;
use Asynctask\Exception\BadRequest;
use Asynctask\Exception\CommandNotAllowed;
use Asynctask\Exception\Forbidden;
use Asynctask\Exception\NotFound;
use Asynctask\Exception\UnknownTask;
use PHPUnit\Framework\TestCase;

/** Asynctask\Client against the real daemons: every method and every error mapping. */
final class ClientTest extends TestCase
{
    /** @var DaemonFixture */
    private static $f;

    public static function setUpBeforeClass(): void
    {
        self::$f = DaemonFixture::shared();
    }

    private function unix(): Client
    {
        return new Client('unix://' . self::$f->unixSocket);
    }

    private function tcp(): Client
    {
        return new Client('tcp://127.0.0.1:' . self::$f->port);
    }

    public function testSubmitStatusAndWait(): void
    {
        $client = $this->unix();
        $id = $client->submit('echo-args', ['a b', '$(touch /tmp/x)', "quote'd"], ['stdin' => "line 1\nline 2\n"]);
        $this->assertGreaterThan(0, $id);
        $this->assertSame($id, $client->status($id)['id']);
        $record = $client->wait($id, 30.0);
        $this->assertSame('succeeded', $record['state']);
        $this->assertSame(0, $record['exit_status']);
        $this->assertSame("a b\n\$(touch /tmp/x)\nquote'd\n", file_get_contents(self::$f->evidence . "/args-$id"));
        $this->assertSame("line 1\nline 2\n", file_get_contents(self::$f->evidence . "/stdin-$id"));
    }

    public function testWaitReturnsTheExitStatusOfAFailedRun(): void
    {
        $client = $this->tcp();
        $record = $client->wait($client->submit('exit', ['7']), 30.0);
        $this->assertSame('failed', $record['state']);
        $this->assertSame(7, $record['exit_status']);
    }

    public function testWaitTimesOutWithTheCurrentState(): void
    {
        $client = $this->unix();
        $id = $client->submit('sleep', ['5']);
        $start = microtime(true);
        $record = $client->wait($id, 0.5);
        $this->assertLessThan(3.0, microtime(true) - $start);
        $this->assertContains($record['state'], ['queued', 'running']);
        $this->assertSame('running', $client->cancel($id));
        $this->assertSame('cancelled', $client->wait($id, 15.0)['state']);
    }

    public function testIdempotencyKeyReturnsTheFirstId(): void
    {
        $client = $this->unix();
        $key = 'order-' . bin2hex(random_bytes(4));
        $first = $client->submit('echo-args', ['once'], ['key' => $key]);
        $this->assertSame($first, $client->submit('echo-args', ['twice'], ['key' => $key]));
    }

    public function testDelayAndCancelOfAQueuedTask(): void
    {
        $client = $this->unix();
        $id = $client->submit('echo-args', ['later'], ['delay' => 60, 'priority' => 5]);
        $this->assertSame('queued', $client->status($id)['state']);
        $this->assertSame('cancelled', $client->cancel($id));
        $this->assertSame('cancelled', $client->status($id)['state']);
        $this->assertFileDoesNotExist(self::$f->evidence . "/args-$id");
    }

    public function testCommandRunsAListedCommand(): void
    {
        $client = $this->unix();
        $id = $client->command('touch ' . self::$f->evidence . '/new-command');
        $this->assertSame('succeeded', $client->wait($id, 30.0)['state']);
        $this->assertFileExists(self::$f->evidence . '/new-command');
    }

    public function testSubmitManyPipelines(): void
    {
        $client = $this->unix();
        $items = [];
        for ($i = 0; $i < 50; $i++) {
            $items[] = ['echo-args', ["item-$i"]];
        }
        $ids = $client->submitMany($items);
        $this->assertCount(50, $ids);
        $sorted = $ids;
        sort($sorted);
        $this->assertSame($sorted, $ids, 'ids come back in request order');
        $this->assertSame(50, count(array_unique($ids)));
        $this->assertSame('succeeded', $client->wait(end($ids), 30.0)['state']);
    }

    public function testStatsAndPing(): void
    {
        $client = $this->unix();
        $this->assertTrue($client->ping());
        $stats = $client->stats();
        foreach (['queued', 'running', 'succeeded', 'failed', 'cancelled'] as $field) {
            $this->assertArrayHasKey($field, $stats);
        }
        $this->assertSame('connected', $stats['launcher']);
    }

    public function testUnknownTask(): void
    {
        $this->expectException(UnknownTask::class);
        $this->unix()->submit('no-such-task');
    }

    public function testCommandNotAllowed(): void
    {
        $this->expectException(CommandNotAllowed::class);
        $this->unix()->command('rm -rf /');
    }

    public function testForbidden(): void
    {
        $this->expectException(Forbidden::class);
        $this->tcp()->submit('remote-only');
    }

    public function testNotFound(): void
    {
        $this->expectException(NotFound::class);
        $this->unix()->status(999999999);
    }

    public function testBadRequestFromTheServer(): void
    {
        $this->expectException(BadRequest::class);
        $this->unix()->submit('echo-args', array_fill(0, 9, 'x'));  // max_args is 8
    }

    public function testTheConnectionSurvivesAnError(): void
    {
        $client = $this->unix();
        try {
            $client->submit('no-such-task');
            $this->fail('expected UnknownTask');
        } catch (UnknownTask $e) {
            $this->assertSame('unknown_task', $e->getErrorCode());
        }
        $this->assertTrue($client->ping());
    }

    public function testClientSideValidation(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->unix()->submit('echo-args', [], ['colour' => 'blue']);
    }
}
