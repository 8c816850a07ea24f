<?php

namespace Wilson\Async\Client;

use Wilson\Async\Task\AbstractTask;

/**
 * The old package's Swoole-based sender. The bytes sent are identical to CommonSender's, so this
 * class uses plain PHP streams when the Swoole extension is not installed.
 */
class SwooleSender extends AbstractSender
{
    /** @var object|null \Swoole\Client when the extension is loaded */
    private $swoole;

    public function __construct()
    {
        $config = $this->getConfig();
        if (class_exists('\Swoole\Client')) {
            $client = new \Swoole\Client(constant('SWOOLE_SOCK_TCP'));
            if ($client->connect($config['ip'], (int) $config['swoole_task_server_port'], -1)) {
                $this->swoole = $client;
                return;
            }
        }
        $this->client = $this->openStream($config);
    }

    public function sendTask(AbstractTask $task)
    {
        return $this->send(serialize($task));
    }

    public function sendCommand($command)
    {
        return $this->send(serialize($command));
    }

    private function send(string $serialized)
    {
        if ($this->swoole) {
            return $this->swoole->send($serialized . PHP_EOL);
        }
        return $this->writeFrame($serialized);
    }

    public function __destruct()
    {
        if ($this->swoole) {
            $this->swoole->close();
        }
        parent::__destruct();
    }
}
