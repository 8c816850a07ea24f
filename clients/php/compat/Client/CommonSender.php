<?php

namespace Wilson\Async\Client;

use Wilson\Async\Task\AbstractTask;

/** Sender over a plain TCP stream (no extension needed), as in the old package. */
class CommonSender extends AbstractSender
{
    public function __construct()
    {
        $this->client = $this->openStream($this->getConfig());
    }

    public function sendTask(AbstractTask $task)
    {
        return $this->writeFrame(serialize($task));
    }

    public function sendCommand($command)
    {
        return $this->writeFrame(serialize($command));
    }
}
