<?php

namespace Asynctask\Exception;

/**
 * Base of every error the client raises. getErrorCode() is the server's code ("forbidden", ...),
 * or "connection" / "timeout" / "protocol" for failures on the client's side.
 */
class AsynctaskException extends \RuntimeException
{
    /** @var string */
    private $errorCode;

    public function __construct(string $errorCode, string $message, ?\Throwable $previous = null)
    {
        parent::__construct($message, 0, $previous);
        $this->errorCode = $errorCode;
    }

    public function getErrorCode(): string
    {
        return $this->errorCode;
    }

    /** Maps a server error code to its exception class. */
    public static function fromResponse(array $response): self
    {
        $code = is_string($response['code'] ?? null) ? $response['code'] : 'internal';
        $message = is_string($response['error'] ?? null) ? $response['error'] : $code;
        $classes = [
            'bad_frame' => BadRequest::class,
            'frame_too_large' => BadRequest::class,
            'bad_request' => BadRequest::class,
            'unknown_task' => UnknownTask::class,
            'command_not_allowed' => CommandNotAllowed::class,
            'forbidden' => Forbidden::class,
            'not_found' => NotFound::class,
            'unavailable' => Unavailable::class,
            'quota_exceeded' => QuotaExceeded::class,
        ];
        $class = $classes[$code] ?? Internal::class;
        return new $class($code, $message);
    }
}
