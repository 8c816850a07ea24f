<?php

namespace Asynctask;

use Asynctask\Exception\AsynctaskException;
use Asynctask\Exception\ConnectionFailed;
use Asynctask\Exception\Timeout;

/**
 * Client for asynctaskd. One instance keeps one connection, opened on first use and reused; it is
 * cheap to keep one per PHP-FPM request. Requires only ext-json and PHP's stream functions.
 *
 *     $client = new Asynctask\Client();                       // unix:///run/asynctask/asynctask.sock
 *     $id = $client->submit('resize', ['in.png', 'out.png'], ['key' => 'img-42']);
 *     $record = $client->wait($id, 30.0);
 */
class Client
{
    public const DEFAULT_ADDRESS = 'unix:///run/asynctask/asynctask.sock';

    /** @var string */
    private $address;
    /** @var float */
    private $connectTimeout;
    /** @var float */
    private $readTimeout;
    /** @var resource|null */
    private $stream;
    /** @var string */
    private $buffer = '';

    /**
     * @param string $address        unix:///path or tcp://host:port
     * @param float  $connectTimeout seconds
     * @param float  $readTimeout    seconds to wait for each answer (wait() adds its own timeout)
     */
    public function __construct(string $address = self::DEFAULT_ADDRESS, float $connectTimeout = 2.0,
                                float $readTimeout = 10.0)
    {
        if (!preg_match('#^(unix|tcp)://.+#', $address)) {
            throw new \InvalidArgumentException("address must be unix:///path or tcp://host:port, not '$address'");
        }
        $this->address = $address;
        $this->connectTimeout = $connectTimeout;
        $this->readTimeout = $readTimeout;
    }

    public function __destruct()
    {
        $this->close();
    }

    public function close(): void
    {
        if ($this->stream) {
            fclose($this->stream);
        }
        $this->stream = null;
        $this->buffer = '';
    }

    /**
     * Submits a task; returns its id.
     * @param array $options key (idempotency key), delay (seconds), priority (int), stdin (string)
     */
    public function submit(string $task, array $args = [], array $options = []): int
    {
        return (int) $this->call($this->submitRequest($task, $args, $options))['id'];
    }

    /** Submits a raw command from the server's reviewed list; returns its id. */
    public function command(string $cmd): int
    {
        return (int) $this->call(['op' => 'submit', 'cmd' => $cmd])['id'];
    }

    /**
     * Submits many tasks over one connection, pipelined: all requests are written, then all answers
     * read. Each item is [task, args, options]. Returns the ids in order; throws on the first error,
     * after reading every answer (each item was accepted or refused on its own).
     * @return int[]
     */
    public function submitMany(array $items): array
    {
        $requests = [];
        foreach ($items as $i => $item) {
            if (!is_array($item) || !isset($item[0]) || !is_string($item[0])) {
                throw new \InvalidArgumentException("item $i must be [task, args, options]");
            }
            $requests[] = $this->submitRequest($item[0], $item[1] ?? [], $item[2] ?? []);
        }
        $responses = $this->pipeline($requests);
        $ids = [];
        $error = null;
        foreach ($responses as $response) {
            if (!empty($response['ok'])) {
                $ids[] = (int) $response['id'];
            } elseif ($error === null) {
                $error = AsynctaskException::fromResponse($response);
            }
        }
        if ($error !== null) {
            throw $error;
        }
        return $ids;
    }

    /** The task's record (id, task, args, state, attempts, result, exit_status, progress, ...). */
    public function status(int $id): array
    {
        return $this->strip($this->call(['op' => 'status', 'id' => $id]));
    }

    /**
     * Waits until the task is finished or $timeout seconds pass; returns its record either way
     * (check $record['state']).
     */
    public function wait(int $id, float $timeout): array
    {
        $deadline = microtime(true) + $timeout;
        for (;;) {
            $left = max(0.0, $deadline - microtime(true));
            // The server caps one wait; ask again until the caller's timeout is used up.
            $slice = min($left, 3600.0);
            $record = $this->call(['op' => 'wait', 'id' => $id, 'timeout' => $slice], $slice);
            $final = in_array($record['state'] ?? '', ['succeeded', 'failed', 'cancelled'], true);
            if ($final || microtime(true) >= $deadline) {
                return $this->strip($record);
            }
        }
    }

    /** Cancels a queued task, or stops a running one. Returns the state after the request. */
    public function cancel(int $id): string
    {
        return (string) $this->call(['op' => 'cancel', 'id' => $id])['state'];
    }

    public function stats(): array
    {
        return $this->strip($this->call(['op' => 'stats']));
    }

    public function ping(): bool
    {
        return !empty($this->call(['op' => 'ping'])['pong']);
    }

    private function submitRequest(string $task, array $args, array $options): array
    {
        $request = ['op' => 'submit', 'task' => $task];
        if ($args) {
            $request['args'] = array_map('strval', array_values($args));
        }
        $known = ['key' => 'is_string', 'delay' => 'is_int', 'priority' => 'is_int', 'stdin' => 'is_string'];
        foreach ($options as $name => $value) {
            if (!isset($known[$name])) {
                throw new \InvalidArgumentException("unknown submit option '$name'");
            }
            if (!$known[$name]($value)) {
                throw new \InvalidArgumentException("submit option '$name' has the wrong type");
            }
            $request[$name] = $value;
        }
        return $request;
    }

    private function strip(array $response): array
    {
        unset($response['ok']);
        return $response;
    }

    /** Sends one request and returns its successful answer, or throws the matching exception. */
    private function call(array $request, float $extraTimeout = 0.0): array
    {
        $response = $this->pipeline([$request], $extraTimeout)[0];
        if (empty($response['ok'])) {
            throw AsynctaskException::fromResponse($response);
        }
        return $response;
    }

    /** @return array[] one decoded answer per request, in order */
    private function pipeline(array $requests, float $extraTimeout = 0.0): array
    {
        $payload = '';
        foreach ($requests as $request) {
            $payload .= json_encode($request, JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR) . "\n";
        }
        $this->connect();
        try {
            $this->writeAll($payload);
            $responses = [];
            $deadline = microtime(true) + $this->readTimeout + $extraTimeout;
            foreach ($requests as $_) {
                $responses[] = $this->readResponse($deadline);
            }
            return $responses;
        } catch (AsynctaskException $e) {
            // A half-read answer would desynchronize the next call: start over with a new connection.
            $this->close();
            throw $e;
        }
    }

    private function connect(): void
    {
        if ($this->stream) {
            return;
        }
        $stream = @stream_socket_client($this->address, $errno, $errstr, $this->connectTimeout);
        if (!$stream) {
            throw new ConnectionFailed('connection', "cannot connect to {$this->address}: $errstr ($errno)");
        }
        stream_set_blocking($stream, true);
        $this->stream = $stream;
        $this->buffer = '';
    }

    private function writeAll(string $data): void
    {
        while ($data !== '') {
            $n = @fwrite($this->stream, $data);
            if ($n === false || $n === 0) {
                throw new ConnectionFailed('connection', "write to {$this->address} failed");
            }
            $data = (string) substr($data, $n);
        }
    }

    private function readResponse(float $deadline): array
    {
        while (($pos = strpos($this->buffer, "\n")) === false) {
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                throw new Timeout('timeout', "no answer from {$this->address} in time");
            }
            $read = [$this->stream];
            $write = $except = null;
            $sec = (int) floor($left);
            $ready = @stream_select($read, $write, $except, $sec, (int) (($left - $sec) * 1e6));
            if ($ready === false) {
                throw new ConnectionFailed('connection', "select on {$this->address} failed");
            }
            if ($ready === 0) {
                continue;
            }
            $chunk = fread($this->stream, 65536);
            if ($chunk === false || ($chunk === '' && feof($this->stream))) {
                throw new ConnectionFailed('connection', "{$this->address} closed the connection");
            }
            $this->buffer .= $chunk;
        }
        $line = substr($this->buffer, 0, $pos);
        $this->buffer = (string) substr($this->buffer, $pos + 1);
        $response = json_decode($line, true);
        if (!is_array($response)) {
            throw new AsynctaskException('protocol', "unreadable answer from {$this->address}: $line");
        }
        return $response;
    }
}
