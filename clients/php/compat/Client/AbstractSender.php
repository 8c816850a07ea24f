<?php

namespace Wilson\Async\Client;

use Wilson\Async\Task\AbstractTask;

/**
 * Drop-in replacement for the old async-task package's senders: the same class names, methods and
 * bytes on the wire (serialize($x) . PHP_EOL to ip:swoole_task_server_port), so code written for the
 * old server works unchanged against asynctaskd's TCP listener (127.0.0.1:9501).
 */
abstract class AbstractSender
{
    /** @var resource|null */
    protected $client;

    abstract public function sendTask(AbstractTask $task);

    abstract public function sendCommand($command);

    /**
     * The old package's config lookup order: a CodeIgniter application's config/swoole.php, then a
     * Laravel application's config_path('swoole.php'), then the package's own config/swoole.php.
     * Each returns an array with at least 'ip' and 'swoole_task_server_port'.
     */
    protected function getConfig(): array
    {
        $candidates = [];
        if (defined('APPPATH')) {
            $candidates[] = rtrim(constant('APPPATH'), '/') . '/config/swoole.php';
        }
        if (function_exists('config_path')) {
            $candidates[] = config_path('swoole.php');
        }
        $candidates[] = dirname(__DIR__) . '/config/swoole.php';
        foreach ($candidates as $file) {
            if (is_file($file)) {
                $config = require $file;
                if (is_array($config)) {
                    return $config + ['ip' => '127.0.0.1', 'swoole_task_server_port' => 9501];
                }
            }
        }
        return ['ip' => '127.0.0.1', 'swoole_task_server_port' => 9501];
    }

    /** Opens the same plain TCP stream the old CommonSender used. */
    protected function openStream(array $config)
    {
        $stream = @stream_socket_client('tcp://' . $config['ip'] . ':' . $config['swoole_task_server_port'],
            $errno, $errstr, 2.0);
        if (!$stream) {
            echo "ERROR: $errno - $errstr\n";
            return null;
        }
        return $stream;
    }

    /**
     * Writes one frame as the old clients did, and reads nothing: asynctaskd answers nothing to these
     * frames, as the old server did not. (An answer left unread would make the kernel reset the
     * connection at close and drop the frames not sent yet.) A refused frame is logged by the daemon.
     * For an acknowledgement -- the task id, or why it was refused -- use \Asynctask\Client.
     * @return int|false bytes written, as fwrite() returns
     */
    protected function writeFrame(string $serialized)
    {
        if (!$this->client) {
            return false;
        }
        return fwrite($this->client, $serialized . PHP_EOL, strlen($serialized) + 1);
    }

    public function __destruct()
    {
        if (is_resource($this->client)) {
            fclose($this->client);
        }
    }
}
