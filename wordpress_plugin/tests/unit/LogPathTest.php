<?php
/**
 * The log stays out of anything the web server can serve.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require_once __DIR__ . '/TapTestCase.php';

final class LogPathTest extends TapTestCase {

	private function paths() {
		return $this->plugin->log_path;
	}

	public function test_default_is_next_to_the_web_root_not_inside(): void {
		$this->assertSame( TAP_TEST_SITE . '/tap-logs/orders.log', $this->paths()->default_path() );
		$this->assertNull( $this->paths()->problem( $this->paths()->default_path() ) );
		$this->assertSame( $this->paths()->default_path(), $this->paths()->resolve() );
		$this->assertSame( array(), $this->errors_reported() );
	}

	public function test_configured_path_outside_is_used(): void {
		update_option( 'tap_order_log_path', TAP_TEST_ROOT . '/outside/var/log/tap/orders.log' );
		$this->assertSame( TAP_TEST_ROOT . '/outside/var/log/tap/orders.log', $this->paths()->resolve() );
	}

	/** @return array<string, array{0: string, 1: string}> path => expected reason */
	public function refused_paths(): array {
		return array(
			'web root'              => array( ABSPATH . 'orders.log', 'web root' ),
			'web root itself'       => array( rtrim( ABSPATH, '/' ) . '/x/../orders.log', 'web root' ),
			'uploads'               => array( WP_CONTENT_DIR . '/uploads/fluent-bit-orders.log', 'uploads directory' ),
			'wp-content'            => array( WP_CONTENT_DIR . '/orders.log', 'wp-content' ),
			'dot-dot into web root' => array( TAP_TEST_ROOT . '/outside/../site/public/orders.log', 'web root' ),
			'double slashes'        => array( TAP_TEST_SITE . '//public///orders.log', 'web root' ),
			'relative'              => array( 'tap-logs/orders.log', 'not absolute' ),
			'dot relative'          => array( './orders.log', 'not absolute' ),
			'directory'             => array( TAP_TEST_ROOT . '/outside/', 'directory' ),
			'NUL byte'              => array( TAP_TEST_ROOT . "/outside/orders.log\0.txt", 'NUL' ),
			'empty'                 => array( '', 'empty' ),
		);
	}

	/** @dataProvider refused_paths */
	public function test_refused( string $path, string $reason ): void {
		$problem = $this->paths()->problem( $path );
		$this->assertNotNull( $problem, $path );
		$this->assertStringContainsString( $reason, $problem );
	}

	public function test_refused_setting_falls_back_to_default_and_is_reported_once(): void {
		update_option( 'tap_order_log_path', ABSPATH . 'wp-content/uploads/orders.log' );
		$this->assertSame( $this->paths()->default_path(), $this->paths()->resolve() );
		$this->assertSame( $this->paths()->default_path(), $this->paths()->resolve() );
		$errors = $this->errors_reported();
		$this->assertCount( 1, $errors );
		$this->assertStringContainsString( 'Refused log path', $errors[0] );
		$this->assertStringContainsString( 'uploads', $errors[0] );
	}

	public function test_symlink_into_the_web_root_is_refused(): void {
		mkdir( TAP_TEST_ROOT . '/outside', 0755, true );
		symlink( ABSPATH, TAP_TEST_ROOT . '/outside/innocent' );
		$this->assertStringContainsString( 'web root', (string) $this->paths()->problem( TAP_TEST_ROOT . '/outside/innocent/logs/orders.log' ) );

		symlink( ABSPATH . 'orders.log', TAP_TEST_ROOT . '/outside/dangling.log' );
		$this->assertNotNull( $this->paths()->problem( TAP_TEST_ROOT . '/outside/dangling.log' ) );
	}

	public function test_filter_can_move_the_log_but_not_into_the_web_root(): void {
		add_filter( 'tap_order_log_path', static function () {
			return TAP_TEST_ROOT . '/outside/filtered.log';
		} );
		$this->assertSame( TAP_TEST_ROOT . '/outside/filtered.log', $this->paths()->resolve() );

		tap_test_reset_hooks();
		add_filter( 'tap_order_log_path', static function () {
			return ABSPATH . 'filtered.log';
		} );
		$this->assertSame( $this->paths()->default_path(), $this->paths()->resolve() );
	}

	public function test_document_root_is_refused_and_an_unsafe_default_writes_nothing(): void {
		$_SERVER['DOCUMENT_ROOT'] = TAP_TEST_SITE; // the host serves the parent of the WordPress directory
		$this->assertStringContainsString( 'document root', (string) $this->paths()->problem( $this->paths()->default_path() ) );
		$this->assertNull( $this->paths()->resolve() );

		tap_test_make_order( array( 'id' => 801 ) );
		wc_get_order( 801 )->update_status( 'processing' );
		$this->assertFileDoesNotExist( $this->default_log() );
		$this->assertSame( '', wc_get_order( 801 )->get_meta( TAP_Order_Logger::META_LOGGED ) );
		$this->assertStringContainsString( 'not safe either', implode( "\n", $this->errors_reported() ) );
	}

	/** @return array<string, array{0: string, 1: string}> constant => expected path ('' = the default) */
	public function constants(): array {
		return array(
			'outside'        => array( '/outside/const/orders.log', '/outside/const/orders.log' ),
			'in the web root' => array( '/site/public/orders.log', '' ),
		);
	}

	/**
	 * TAP_ORDER_LOG_PATH is a constant: checked in a child process.
	 *
	 * @dataProvider constants
	 */
	public function test_wp_config_constant_wins_over_the_setting( string $constant, string $expected ): void {
		$code = 'require ' . var_export( dirname( __DIR__ ) . '/bootstrap.php', true ) . ';'
			. ' define( "TAP_ORDER_LOG_PATH", TAP_TEST_ROOT . ' . var_export( $constant, true ) . ' );'
			. ' update_option( "tap_order_log_path", TAP_TEST_ROOT . "/outside/option.log" );'
			. ' $p = new TAP_Log_Path( new TAP_Reporter() );'
			. ' echo substr( $p->resolve(), strlen( TAP_TEST_ROOT ) );';
		$out = shell_exec( escapeshellarg( PHP_BINARY ) . ' -r ' . escapeshellarg( $code ) );
		$this->assertSame( '' === $expected ? '/site/tap-logs/orders.log' : $expected, $out );
	}

	public function test_insisting_on_the_web_root_takes_code_and_warns(): void {
		update_option( 'tap_order_log_path', ABSPATH . 'private/orders.log' );
		add_filter( 'tap_order_log_allow_unsafe_path', '__return_true' );
		$this->assertSame( ABSPATH . 'private/orders.log', $this->paths()->resolve() );
		$this->assertSame( array(), $this->errors_reported() );
		$warnings = $GLOBALS['tap_wc_logger']->messages( 'warning' );
		$this->assertCount( 1, $warnings );
		$this->assertStringContainsString( 'make sure the web server denies it', $warnings[0] );

		// Anything but a literal true keeps the guard.
		tap_test_reset_hooks();
		add_filter( 'tap_order_log_allow_unsafe_path', static function () {
			return 'yes';
		} );
		$this->assertSame( $this->paths()->default_path(), ( new TAP_Log_Path( new TAP_Reporter() ) )->resolve() );
	}

	public function test_is_within(): void {
		$this->assertTrue( TAP_Log_Path::is_within( '/srv/www/a.log', '/srv/www' ) );
		$this->assertTrue( TAP_Log_Path::is_within( '/srv/www', '/srv/www/' ) );
		$this->assertFalse( TAP_Log_Path::is_within( '/srv/www-logs/a.log', '/srv/www' ) );
		$this->assertTrue( TAP_Log_Path::is_within( '/anything', '/' ) );
	}
}
