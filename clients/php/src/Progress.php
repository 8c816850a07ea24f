<?php

declare(strict_types=1);

namespace Asynctask;

/**
 * A task tells how far along it is, the systemd way: STATUS= on the socket in $NOTIFY_SOCKET (a unit's,
 * under the systemd executor; the run's own, under the direct one). The latest text is the record's
 * "progress", shown by `asynctask status` and `asynctask wait --progress`. Reporting often is fine: the
 * launcher passes on at most five updates a second per run, the latest.
 */
final class Progress
{
    /**
     * Sends $text (one line; at most 256 bytes are kept) as the task's progress. False when the task
     * was not started by asynctask (no NOTIFY_SOCKET) or the message could not be sent; never throws,
     * so a task never fails for its progress.
     */
    public static function report(string $text): bool
    {
        $socket = getenv('NOTIFY_SOCKET');
        if ($socket === false || $socket === '') {
            return false;
        }
        // A newline would end the assignment; the rest would be read as other keys.
        $message = 'STATUS=' . strtr($text, "\r\n", '  ');
        if (function_exists('socket_create')) {
            return self::sendDatagram($socket, $message);
        }
        return self::runNotify($message);
    }

    private static function sendDatagram(string $address, string $message): bool
    {
        // "@name" is an abstract socket: its address starts with a NUL byte.
        if ($address[0] === '@') {
            $address = "\0" . substr($address, 1);
        }
        $sock = @socket_create(AF_UNIX, SOCK_DGRAM, 0);
        if ($sock === false) {
            return false;
        }
        // connect() takes the address with its length, so an abstract name arrives whole.
        $ok = @socket_connect($sock, $address) && @socket_send($sock, $message, strlen($message), 0) === strlen($message);
        socket_close($sock);
        return $ok;
    }

    /** Without the sockets extension: systemd-notify, which also waits until the message is read. */
    private static function runNotify(string $message): bool
    {
        $proc = @proc_open(['systemd-notify', $message], [0 => ['file', '/dev/null', 'r'],
            1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes);
        return $proc !== false && proc_close($proc) === 0;
    }
}
