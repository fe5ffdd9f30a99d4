<?php
/**
 * The plugin's TAP_Log_Writer on its own, for the fault suite's disk-full row
 * (tests/faults/test_disk_full.py):
 *
 *     php append-lines.php <log path>
 *
 * Reads lines on stdin; appends each one (newline included) to the log through
 * TAP_Log_Writer::append and answers "ok" or "error: <message>" on stdout, one answer per line,
 * flushed, so the caller can write, look and go on line by line.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require __DIR__ . '/bootstrap.php';

list( , $path ) = $argv;
$writer = new TAP_Log_Writer();
while ( false !== ( $line = fgets( STDIN ) ) ) {
	try {
		$writer->append( $path, $line );
		echo "ok\n";
	} catch ( Exception $e ) {
		echo 'error: ', str_replace( "\n", ' ', $e->getMessage() ), "\n";
	}
	fflush( STDOUT );
}
