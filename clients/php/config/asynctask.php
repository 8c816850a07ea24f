<?php
// Laravel configuration for the asynctask client (config/asynctask.php once published).
return [
    // unix:///run/asynctask/asynctask.sock (identity by user, the default) or tcp://127.0.0.1:9501
    'address' => env('ASYNCTASK_ADDRESS', 'unix:///run/asynctask/asynctask.sock'),
    'connect_timeout' => env('ASYNCTASK_CONNECT_TIMEOUT', 2.0),
    'read_timeout' => env('ASYNCTASK_READ_TIMEOUT', 10.0),
];
