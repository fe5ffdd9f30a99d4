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

	private function outside( $relative = '' ) {
		if ( ! is_dir( TAP_TEST_ROOT . '/outside' ) ) {
			mkdir( TAP_TEST_ROOT . '/outside', 0755, true );
		}
		return TAP_TEST_ROOT . '/outside' . ( '' === $relative ? '' : '/' . $relative );
	}

	public function test_configured_path_outside_is_used(): void {
		mkdir( $this->outside( 'var/log/tap' ), 0750, true );
		update_option( 'tap_order_log_path', $this->outside( 'var/log/tap/orders.log' ) );
		$this->assertSame( $this->outside( 'var/log/tap/orders.log' ), $this->paths()->resolve() );
	}

	public function test_jsonl_and_existing_regular_files_are_accepted(): void {
		$this->assertNull( $this->paths()->problem( $this->outside( 'orders.jsonl' ) ) );
		file_put_contents( $this->outside( 'existing.log' ), '' );
		$this->assertNull( $this->paths()->problem( $this->outside( 'existing.log' ) ) );
		$this->assertNull( $this->paths()->problem( $this->outside( 'UPPER.LOG' ) ) );
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
			'wp-config.php'         => array( TAP_TEST_SITE . '/wp-config.php', 'configuration file' ),
			'wp-config.php in root' => array( ABSPATH . 'wp-config.php', 'configuration file' ),
			'.htaccess'             => array( TAP_TEST_ROOT . '/outside/.htaccess', 'configuration file' ),
			'.user.ini'             => array( TAP_TEST_ROOT . '/outside/.user.ini', 'configuration file' ),
			'a PHP file'            => array( TAP_TEST_ROOT . '/outside/orders.php', 'PHP file name' ),
			'a PHP 8 file'          => array( TAP_TEST_ROOT . '/outside/orders.php8', 'PHP file name' ),
			'a phtml file'          => array( TAP_TEST_ROOT . '/outside/orders.PHTML', 'PHP file name' ),
			'.php. in the middle'   => array( TAP_TEST_ROOT . '/outside/orders.php.log', 'PHP file name' ),
			'a .txt file'           => array( TAP_TEST_ROOT . '/outside/orders.txt', 'does not end in .log or .jsonl' ),
			'no extension'          => array( TAP_TEST_ROOT . '/outside/orders', 'does not end in .log or .jsonl' ),
			'only an extension'     => array( TAP_TEST_ROOT . '/outside/.log', 'does not end in .log or .jsonl' ),
			'/dev/stdout'           => array( '/dev/stdout', 'does not end in .log' ),
			'/dev/null'             => array( '/dev/null', 'does not end in .log' ),
			'under /dev'            => array( '/dev/shm/orders.log', 'inside /dev, a system directory' ),
			'under /proc'           => array( '/proc/self/orders.log', 'inside /proc, a system directory' ),
			'under /sys'            => array( '/sys/orders.log', 'inside /sys, a system directory' ),
			'under /etc'            => array( '/etc/tap/orders.log', 'inside /etc, a system directory' ),
			'dot-dot into /etc'     => array( TAP_TEST_ROOT . '/../../../../../../../etc/orders.log', 'inside /etc' ),
			'missing directory'     => array( TAP_TEST_ROOT . '/outside/nowhere/orders.log', 'does not exist' ),
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
		symlink( ABSPATH, $this->outside( 'innocent' ) );
		$this->assertStringContainsString( 'web root', (string) $this->paths()->problem( $this->outside( 'innocent/logs/orders.log' ) ) );
		$this->assertStringContainsString( 'web root', (string) $this->paths()->problem( $this->outside( 'innocent/orders.log' ) ) );

		symlink( ABSPATH . 'orders.log', $this->outside( 'dangling.log' ) );
		$this->assertNotNull( $this->paths()->problem( $this->outside( 'dangling.log' ) ) );
	}

	public function test_symlinked_directory_inside_the_web_root_is_refused_even_if_it_points_outside(): void {
		mkdir( $this->outside( 'real' ) );
		symlink( $this->outside( 'real' ), ABSPATH . 'linked' );
		try {
			// The web server follows the link: /linked/orders.log would be served.
			$this->assertStringContainsString( 'web root', (string) $this->paths()->problem( ABSPATH . 'linked/orders.log' ) );
		} finally {
			unlink( ABSPATH . 'linked' );
		}
	}

	/** @return array<string, array{0: string, 1: string}> link target => expected reason */
	public function refused_link_targets(): array {
		return array(
			'wp-config.php'   => array( TAP_TEST_SITE . '/wp-config.php', 'configuration file' ),
			'.htaccess'       => array( ABSPATH . '.htaccess', 'configuration file' ),
			'a PHP file'      => array( TAP_TEST_ROOT . '/outside/theme-functions.php', 'PHP file name' ),
			'/dev/null'       => array( '/dev/null', 'resolves to /dev/null' ),
			'a file in /etc'  => array( '/etc/passwd', 'resolves to /etc/passwd' ),
			'nothing (/etc)'  => array( '/etc/tap-test-nonexistent.log', 'cannot be resolved' ),
			'the web root'    => array( ABSPATH . 'orders.log', 'web root' ),
		);
	}

	/**
	 * An innocent `.log` name outside the web root that is a symbolic link to a refused place.
	 *
	 * @dataProvider refused_link_targets
	 */
	public function test_symlink_to_a_refused_target_is_refused( string $target, string $reason ): void {
		foreach ( array( TAP_TEST_SITE . '/wp-config.php', ABSPATH . '.htaccess', $this->outside( 'theme-functions.php' ), ABSPATH . 'orders.log' ) as $file ) {
			file_put_contents( $file, "<?php\n" );
		}
		symlink( $target, $this->outside( 'orders.log' ) );
		try {
			$problem = (string) $this->paths()->problem( $this->outside( 'orders.log' ) );
			$this->assertStringContainsString( $reason, $problem );
		} finally {
			foreach ( array( TAP_TEST_SITE . '/wp-config.php', ABSPATH . '.htaccess', ABSPATH . 'orders.log' ) as $file ) {
				unlink( $file );
			}
		}
	}

	public function test_a_fifo_is_refused_and_never_opened(): void {
		posix_mkfifo( $this->outside( 'orders.log' ), 0600 );
		$this->assertStringContainsString( 'not a regular file', (string) $this->paths()->problem( $this->outside( 'orders.log' ) ) );

		// Configured anyway: the default is used; the FIFO (whose open would block) is untouched.
		update_option( 'tap_order_log_path', $this->outside( 'orders.log' ) );
		$this->assertSame( $this->paths()->default_path(), $this->paths()->resolve() );
	}

	public function test_a_directory_in_place_of_the_parent_must_exist(): void {
		file_put_contents( $this->outside( 'file' ), 'x' );
		$this->assertStringContainsString( 'does not exist or is not a directory', (string) $this->paths()->problem( $this->outside( 'file/orders.log' ) ) );
	}

	public function test_default_directory_may_be_created_but_nothing_deeper(): void {
		$this->assertDirectoryDoesNotExist( TAP_TEST_SITE . '/tap-logs' );
		$this->assertNull( $this->paths()->problem( $this->paths()->default_path() ), 'the plugin creates tap-logs/' );
		$this->assertStringContainsString( 'does not exist', (string) $this->paths()->problem( TAP_TEST_SITE . '/tap-logs/deeper/orders.log' ) );
		$this->assertStringContainsString( 'does not exist', (string) $this->paths()->problem( TAP_TEST_SITE . '/other-logs/orders.log' ) );
	}

	public function test_writer_refuses_a_non_regular_file_it_is_handed(): void {
		// Past the guard (a race, a caller that skips it): the writer checks what it opened.
		$this->expectException( RuntimeException::class );
		$this->expectExceptionMessage( 'not a regular file' );
		( new TAP_Log_Writer() )->append( '/dev/null', "{}\n" );
	}

	public function test_filter_can_move_the_log_but_not_into_the_web_root(): void {
		$this->outside();
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
		$code = ' define( "TAP_ORDER_LOG_PATH", TAP_TEST_ROOT . ' . var_export( $constant, true ) . ' );'
			. ' mkdir( TAP_TEST_ROOT . "/outside/const", 0750, true );'
			. ' update_option( "tap_order_log_path", TAP_TEST_ROOT . "/outside/option.log" );'
			. ' $p = new TAP_Log_Path( new TAP_Reporter() );'
			. ' echo substr( $p->resolve(), strlen( TAP_TEST_ROOT ) );';
		$this->assertSame( '' === $expected ? '/site/tap-logs/orders.log' : $expected, $this->run_child( $code ) );
	}

	public function test_insisting_on_the_web_root_takes_code_and_warns(): void {
		mkdir( ABSPATH . 'private' );
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
		rmdir( ABSPATH . 'private' );
	}

	public function test_the_escape_hatch_never_opens_php_config_or_system_files(): void {
		add_filter( 'tap_order_log_allow_unsafe_path', '__return_true' );
		$this->assertStringContainsString( 'configuration file', (string) $this->paths()->problem( ABSPATH . 'wp-config.php' ) );
		$this->assertStringContainsString( 'PHP file name', (string) $this->paths()->problem( ABSPATH . 'orders.php' ) );
		$this->assertStringContainsString( 'system directory', (string) $this->paths()->problem( '/etc/orders.log' ) );
	}

	// CLI and cron: no DOCUMENT_ROOT ------------------------------------------------------------

	/**
	 * Runs code in a child process where WordPress sits in `public/wp/` of the web root
	 * `public/`, on a request with no DOCUMENT_ROOT (the child is a CLI process; it also says
	 * it is cron), with the given home and siteurl options.
	 */
	private function in_subfolder_install( $home, $siteurl, $code ) {
		$setup = 'unset( $_SERVER["DOCUMENT_ROOT"] ); $GLOBALS["tap_wp_env"]["doing_cron"] = true;'
			. ' update_option( "home", ' . var_export( $home, true ) . ' ); update_option( "siteurl", ' . var_export( $siteurl, true ) . ' );'
			. ' $p = new TAP_Log_Path( new TAP_Reporter() );';
		return $this->run_child( $setup . $code, array( 'TAP_TEST_WP_SUBDIR' => 'wp' ) );
	}

	/** @return array<string, array{0: string, 1: string, 2: string|null}> home, siteurl, expected home directory */
	public function subfolder_installs(): array {
		return array(
			// Caught by get_home_path() semantics (and by the siteurl's path).
			'own directory, home at the root' => array( 'http://shop.test', 'http://shop.test/wp', '/site/public' ),
			// home = siteurl: no home directory; caught by the siteurl's path alone.
			'served at /wp/'                  => array( 'http://shop.test/wp', 'http://shop.test/wp', null ),
			// siteurl's path (/blog/wp) does not match the folders: caught by the home directory alone.
			'home in a subfolder too'         => array( 'https://shop.test/blog', 'https://shop.test/blog/wp', '/site/public' ),
		);
	}

	/**
	 * The old default (next to ABSPATH) is inside the web root when WordPress is in a subfolder:
	 * refused on CLI and cron too, and the default moves next to the web root.
	 *
	 * @dataProvider subfolder_installs
	 */
	public function test_cli_cron_without_document_root_refuses_the_web_root_of_a_subfolder_install( string $home, string $siteurl, ?string $home_dir ): void {
		$code = ' echo json_encode( array('
			. ' "abspath" => substr( ABSPATH, strlen( TAP_TEST_ROOT ) ),'
			. ' "document_root" => $_SERVER["DOCUMENT_ROOT"] ?? null,'
			. ' "home_path" => null === $p->home_path() ? null : substr( $p->home_path(), strlen( TAP_TEST_ROOT ) ),'
			. ' "next_to_abspath" => $p->problem( TAP_TEST_SITE . "/public/tap-logs/orders.log" ),'
			. ' "web_root" => $p->problem( TAP_TEST_SITE . "/public/orders.log" ),'
			. ' "default" => substr( $p->default_path(), strlen( TAP_TEST_ROOT ) ),'
			. ' "resolved" => substr( (string) $p->resolve(), strlen( TAP_TEST_ROOT ) ),'
			. ' ) );';
		$out = json_decode( $this->in_subfolder_install( $home, $siteurl, $code ), true );
		$this->assertIsArray( $out );
		$this->assertSame( '/site/public/wp/', $out['abspath'] );
		$this->assertNull( $out['document_root'], 'a CLI/cron request: no DOCUMENT_ROOT' );
		$this->assertSame( $home_dir, $out['home_path'] );
		foreach ( array( 'next_to_abspath', 'web_root' ) as $key ) {
			$this->assertStringContainsString( 'where the web server could serve it', (string) $out[ $key ], $key );
			$this->assertStringContainsString( '/site/public)', (string) $out[ $key ], $key . ' names the served directory' );
		}
		$this->assertSame( '/site/tap-logs/orders.log', $out['default'] );
		$this->assertSame( '/site/tap-logs/orders.log', $out['resolved'] );
	}

	public function test_cron_order_of_a_subfolder_install_lands_outside_the_web_root(): void {
		// Booted as WordPress would, then the order is paid under cron (a scheduled gateway check).
		$code = ' TAP_Plugin::boot(); tap_test_make_order( array( "id" => 990 ) ); wc_get_order( 990 )->update_status( "processing" );'
			. ' echo json_encode( array( file_exists( TAP_TEST_SITE . "/tap-logs/orders.log" ), file_exists( TAP_TEST_SITE . "/public/tap-logs/orders.log" ) ) );';
		$this->assertSame( '[true,false]', $this->in_subfolder_install( 'http://shop.test', 'http://shop.test/wp', $code ) );
	}

	public function test_default_is_the_same_on_web_and_cli_requests(): void {
		$code = ' $cli = $p->default_path(); $_SERVER["DOCUMENT_ROOT"] = TAP_TEST_SITE . "/public"; $web = $p->default_path();'
			. ' echo $cli === $web ? "same" : "$cli != $web";';
		$this->assertSame( 'same', $this->in_subfolder_install( 'http://shop.test', 'http://shop.test/wp', $code ) );
	}

	public function test_served_root_from_a_url(): void {
		// Bedrock: wp-content moved to web/app, served at /app: web/ is served.
		$this->assertSame( '/srv/site/web', TAP_Log_Path::served_root( '/srv/site/web/app', 'https://shop.test/app' ) );
		$this->assertSame( '/var/www/html', TAP_Log_Path::served_root( '/var/www/html/shop/wp-content/uploads', 'https://shop.test/shop/wp-content/uploads' ) );
		$this->assertSame( '/var/www/html', TAP_Log_Path::served_root( '/var/www/html/my shop', 'https://shop.test/my%20shop/' ) );
		// An Alias: the URL says nothing about the filesystem.
		$this->assertNull( TAP_Log_Path::served_root( '/srv/wordpress', 'https://shop.test/shop' ) );
		// Served at the site root: the directory itself, already refused.
		$this->assertNull( TAP_Log_Path::served_root( '/var/www/html', 'https://shop.test/' ) );
		$this->assertNull( TAP_Log_Path::served_root( '/var/www/html/wp', 'https://shop.test/../wp' ) );
	}

	public function test_is_within(): void {
		$this->assertTrue( TAP_Log_Path::is_within( '/srv/www/a.log', '/srv/www' ) );
		$this->assertTrue( TAP_Log_Path::is_within( '/srv/www', '/srv/www/' ) );
		$this->assertFalse( TAP_Log_Path::is_within( '/srv/www-logs/a.log', '/srv/www' ) );
		$this->assertTrue( TAP_Log_Path::is_within( '/anything', '/' ) );
	}
}
