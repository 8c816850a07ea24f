<?php

namespace Wilson\Async\Task;

/**
 * Base class of tasks sent with sendTask(), as in the old package. The object is serialized by the
 * sender and rebuilt on the server by asynctask-php-runner, which injects a database connection
 * with setDB() and calls handler(). Throwing from handler() marks the run failed (and retried when
 * the task definition allows more attempts).
 */
abstract class AbstractTask
{
    /** @var \PDO|object|null injected by the runner */
    protected $db;

    /** The server injects its database connection here (a PDO with asynctask-php-runner). */
    public function setDB($db = null)
    {
        $this->db = $db;
    }

    /** The work itself, implemented by each task. */
    abstract public function handler();

    /**
     * Reports how far along handler() is ("40% resized 4 of 10"): the task's record shows the latest
     * as "progress" (asynctask status, asynctask wait --progress). False when it could not be sent.
     */
    protected function progress(string $text): bool
    {
        return \Asynctask\Progress::report($text);
    }

    /** True if the injected connection went away (MySQL error 2006), as the old package checked. */
    public function isDBGone()
    {
        if ($this->db instanceof \PDO) {
            $info = $this->db->errorInfo();
            return isset($info[1]) && (int) $info[1] === 2006;
        }
        if (is_object($this->db) && method_exists($this->db, 'error')) {
            $error = $this->db->error();
            return isset($error[1]) && (int) $error[1] === 2006;
        }
        return false;
    }
}
