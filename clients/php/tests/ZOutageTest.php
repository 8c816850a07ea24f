<?php

namespace Asynctask\Tests;

use Asynctask\Client;
use Asynctask\Exception\ConnectionFailed;
use Asynctask\Exception\Timeout;
use Asynctask\Exception\Unavailable;
use PHPUnit\Framework\TestCase;

/** The client when the server side fails: its own daemons, which these tests stop. */
final class ZOutageTest extends TestCase
{
    /** @var DaemonFixture */
    private $f;

    protected function setUp(): void
    {
        $this->f = new DaemonFixture();
        $this->f->start('/nonexistent/mysqld.sock');
    }

    protected function tearDown(): void
    {
        $this->f->stop();
    }

    public function testUnavailableWhileTheLauncherIsDown(): void
    {
        $this->f->stopProcess('launcher');
        $client = new Client('unix://' . $this->f->unixSocket);
        $this->f->waitFor(function () use ($client) {
            return $client->stats()['launcher'] === 'disconnected';
        }, 'the front to notice the launcher is gone');
        $this->expectException(Unavailable::class);
        $client->submit('echo-args', ['x']);
    }

    public function testReadTimeoutWhenTheServerIsStopped(): void
    {
        $client = new Client('unix://' . $this->f->unixSocket, 1.0, 0.5);
        $this->assertTrue($client->ping());
        $this->f->signal('front', SIGSTOP);
        try {
            $start = microtime(true);
            $client->ping();
            $this->fail('expected a timeout');
        } catch (Timeout $e) {
            $this->assertLessThan(3.0, microtime(true) - $start);
        } finally {
            $this->f->signal('front', SIGCONT);
        }
    }

    public function testConnectionFailedWhenTheServerIsGone(): void
    {
        $this->f->stopProcess('front');
        $this->expectException(ConnectionFailed::class);
        (new Client('tcp://127.0.0.1:' . $this->f->port, 0.5, 0.5))->ping();
    }
}
