<?php
/**
 * Appends are whole, atomic under concurrency, and create private files.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require_once __DIR__ . '/TapTestCase.php';

final class LogWriterTest extends TapTestCase {

	private function dir() {
		return TAP_TEST_ROOT . '/outside/logs';
	}

	public function test_creates_directory_0750_and_file_0640_and_appends(): void {
		$old  = umask( 022 );
		$path = $this->dir() . '/nested/orders.log';
		try {
			$writer = new TAP_Log_Writer();
			$writer->append( $path, "{\"a\":1}\n" );
			$writer->append( $path, "{\"a\":2}\n" );
		} finally {
			umask( $old );
		}
		clearstatcache();
		$this->assertSame( '0750', substr( sprintf( '%o', fileperms( dirname( $path ) ) ), -4 ) );
		$this->assertSame( '0640', substr( sprintf( '%o', fileperms( $path ) ), -4 ) );
		$this->assertSame( "{\"a\":1}\n{\"a\":2}\n", file_get_contents( $path ) );
	}

	public function test_existing_file_mode_is_left_alone(): void {
		mkdir( $this->dir(), 0755, true );
		$path = $this->dir() . '/orders.log';
		touch( $path );
		chmod( $path, 0644 );
		( new TAP_Log_Writer() )->append( $path, "x\n" );
		clearstatcache();
		$this->assertSame( '0644', substr( sprintf( '%o', fileperms( $path ) ), -4 ) );
	}

	/** @return array<string, array{0: string}> */
	public function not_one_line(): array {
		return array(
			'empty'           => array( '' ),
			'no newline'      => array( '{"a":1}' ),
			'two lines'       => array( "{\"a\":1}\n{\"a\":2}\n" ),
			'embedded newline' => array( "{\"a\":\n1}\n" ),
		);
	}

	/** @dataProvider not_one_line */
	public function test_refuses_anything_but_one_line( string $line ): void {
		$this->expectException( InvalidArgumentException::class );
		( new TAP_Log_Writer() )->append( $this->dir() . '/orders.log', $line );
	}

	public function test_unwritable_location_throws_runtime_exception(): void {
		mkdir( $this->dir(), 0755, true );
		file_put_contents( $this->dir() . '/file', 'x' );
		$this->expectException( RuntimeException::class );
		$this->expectExceptionMessage( 'Could not create directory' );
		( new TAP_Log_Writer() )->append( $this->dir() . '/file/sub/orders.log', "x\n" );
	}

	public function test_unopenable_file_throws_runtime_exception(): void {
		mkdir( $this->dir() . '/orders.log', 0755, true ); // a directory where the file should be
		$this->expectException( RuntimeException::class );
		$this->expectExceptionMessage( 'Could not open' );
		( new TAP_Log_Writer() )->append( $this->dir() . '/orders.log', "x\n" );
	}

	public function test_concurrent_writers_never_interleave(): void {
		$writers = 6;
		$lines   = 300;
		$path    = $this->dir() . '/orders.log';
		$script  = dirname( __DIR__ ) . '/concurrent-writer.php';

		$processes = array();
		for ( $w = 0; $w < $writers; $w++ ) {
			$command     = array( PHP_BINARY, $script, $path, (string) $w, (string) $lines );
			$processes[] = proc_open( $command, array( 1 => array( 'pipe', 'w' ), 2 => array( 'pipe', 'w' ) ), $pipes );
			$outputs[]   = $pipes;
		}
		foreach ( $processes as $i => $process ) {
			$stderr = stream_get_contents( $outputs[ $i ][2] );
			stream_get_contents( $outputs[ $i ][1] );
			$this->assertSame( 0, proc_close( $process ), "writer $i failed: $stderr" );
		}

		$text = file_get_contents( $path );
		$this->assertStringEndsWith( "\n", $text );
		$all  = explode( "\n", substr( $text, 0, -1 ) );
		$this->assertCount( $writers * $lines, $all );

		$seen = array();
		foreach ( $all as $n => $line ) {
			$event = json_decode( $line, true );
			$this->assertIsArray( $event, "line $n is not whole JSON: " . substr( $line, 0, 80 ) );
			$this->assertSame( str_repeat( chr( 97 + $event['writer'] % 26 ), strlen( $event['pad'] ) ), $event['pad'], "line $n mixes writers" );
			$seen[ $event['writer'] ][] = $event['seq'];
		}
		for ( $w = 0; $w < $writers; $w++ ) {
			$this->assertSame( range( 0, $lines - 1 ), $seen[ $w ], "writer $w: every line once, in order" );
		}
	}
}
