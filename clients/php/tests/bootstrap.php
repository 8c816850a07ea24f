<?php
require dirname(__DIR__) . '/autoload.php';
require __DIR__ . '/fixtures/tasks.php';
require __DIR__ . '/DaemonFixture.php';
