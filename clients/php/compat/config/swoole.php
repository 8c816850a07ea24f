<?php
// The package's own settings, used when the application has no config/swoole.php of its own.
// asynctaskd's TCP listener (asynctask.socket) is 127.0.0.1:9501, as the old server's was.
return [
    'ip' => '127.0.0.1',
    'swoole_task_server_port' => 9501,
];
