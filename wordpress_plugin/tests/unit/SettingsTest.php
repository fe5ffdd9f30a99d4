<?php
/**
 * The settings field, activation and uninstall.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require_once __DIR__ . '/TapTestCase.php';

final class SettingsTest extends TapTestCase {

	public function test_registers_the_options_with_sanitizers(): void {
		$this->plugin->settings->register_setting();
		$this->plugin->settings->add_page();
		$registered = $GLOBALS['tap_wp_settings']['registered']['tap_order_log_path'];
		$this->assertSame( 'string', $registered['type'] );
		$this->assertSame( array( $this->plugin->settings, 'sanitize_path' ), $registered['sanitize_callback'] );
		$this->assertSame( 'manage_options', $GLOBALS['tap_wp_settings']['pages']['tap-order-logger'] );

		$timeout = $GLOBALS['tap_wp_settings']['registered']['tap_order_log_lock_timeout'];
		$this->assertSame( 'number', $timeout['type'] );
		$this->assertSame( 2.0, $timeout['default'] );
		$this->assertSame( 10.0, call_user_func( $timeout['sanitize_callback'], '60' ) );
		$this->assertSame( 1.5, call_user_func( $timeout['sanitize_callback'], ' 1.5' ) );
	}

	public function test_lock_timeout_field_shows_the_current_value(): void {
		update_option( 'tap_order_log_lock_timeout', 0.5 );
		ob_start();
		$this->plugin->settings->render_lock_timeout_field();
		$html = ob_get_clean();
		$this->assertStringContainsString( 'name="tap_order_log_lock_timeout"', $html );
		$this->assertStringContainsString( 'value="0.5"', $html );
		$this->assertStringContainsString( 'max="10"', $html );
	}

	/** @return array<string, array{0: string}> */
	public function unsafe_submissions(): array {
		return array(
			'uploads'       => array( ABSPATH . 'wp-content/uploads/orders.log' ),
			'wp-config.php' => array( TAP_TEST_SITE . '/wp-config.php' ),
			'a PHP file'    => array( TAP_TEST_ROOT . '/outside/orders.php' ),
			'/dev/stdout'   => array( '/dev/stdout' ),
			'/etc'          => array( '/etc/orders.log' ),
			'no directory'  => array( TAP_TEST_ROOT . '/outside/missing/orders.log' ),
		);
	}

	/** @dataProvider unsafe_submissions */
	public function test_saving_an_unsafe_path_is_refused_and_keeps_the_old_value( string $path ): void {
		mkdir( TAP_TEST_ROOT . '/outside', 0755, true );
		update_option( 'tap_order_log_path', TAP_TEST_ROOT . '/outside/ok.log' );
		$this->assertSame( TAP_TEST_ROOT . '/outside/ok.log', $this->plugin->settings->sanitize_path( $path ) );
		$this->assertCount( 1, $GLOBALS['tap_wp_settings']['errors'] );
		$this->assertStringContainsString( 'was not saved', $GLOBALS['tap_wp_settings']['errors'][0]['message'] );
	}

	public function test_saving_a_path_in_the_web_root_is_refused_and_keeps_the_old_value(): void {
		update_option( 'tap_order_log_path', TAP_TEST_ROOT . '/outside/ok.log' );
		$saved = $this->plugin->settings->sanitize_path( ABSPATH . 'wp-content/uploads/orders.log' );
		$this->assertSame( TAP_TEST_ROOT . '/outside/ok.log', $saved );
		$errors = $GLOBALS['tap_wp_settings']['errors'];
		$this->assertCount( 1, $errors );
		$this->assertSame( 'tap_order_log_path', $errors[0]['setting'] );
		$this->assertStringContainsString( 'outside the web root', $errors[0]['message'] );
	}

	public function test_saving_outside_or_empty_is_accepted(): void {
		mkdir( TAP_TEST_ROOT . '/outside', 0755, true );
		$this->assertSame( TAP_TEST_ROOT . '/outside/orders.log', $this->plugin->settings->sanitize_path( '  ' . TAP_TEST_ROOT . '/outside/orders.log ' ) );
		$this->assertSame( '', $this->plugin->settings->sanitize_path( '' ) );
		$this->assertSame( '', $this->plugin->settings->sanitize_path( array( 'x' ) ) );
		$this->assertSame( array(), $GLOBALS['tap_wp_settings']['errors'] );
	}

	public function test_field_shows_where_lines_go(): void {
		ob_start();
		$this->plugin->settings->render_field();
		$html = ob_get_clean();
		$this->assertStringContainsString( 'name="tap_order_log_path"', $html );
		$this->assertStringContainsString( esc_html( $this->plugin->log_path->default_path() ), $html );
	}

	public function test_activation_adds_the_option_and_creates_the_log_directory(): void {
		unset( $GLOBALS['tap_wp_options']['tap_order_log_path'] );
		do_action( 'activate_tap-order-logger/tap-order-logger.php' ); // nothing hooked in this request's registry
		TAP_Plugin::activate();
		$this->assertSame( '', get_option( 'tap_order_log_path', false ) );
		$this->assertSame( 2.0, get_option( 'tap_order_log_lock_timeout', false ) );
		$this->assertDirectoryExists( TAP_TEST_SITE . '/tap-logs' );
		$this->assertSame( '0750', substr( sprintf( '%o', fileperms( TAP_TEST_SITE . '/tap-logs' ) ), -4 ) );
	}

	public function test_uninstall_removes_the_options_and_queued_retries(): void {
		update_option( 'tap_order_log_path', '/var/log/tap/orders.log' );
		update_option( 'tap_order_log_lock_timeout', 3 );
		as_enqueue_async_action( TAP_Retry_Queue::HOOK, array( 5, 1 ), TAP_Retry_Queue::GROUP );
		wp_schedule_single_event( 100, TAP_Retry_Queue::HOOK, array( 6, 1 ) );
		wp_schedule_single_event( 100, 'someone_elses_hook' );
		if ( ! defined( 'WP_UNINSTALL_PLUGIN' ) ) {
			define( 'WP_UNINSTALL_PLUGIN', 'tap-order-logger/tap-order-logger.php' );
		}
		include dirname( TAP_PLUGIN_FILE ) . '/uninstall.php';
		$this->assertFalse( get_option( 'tap_order_log_path', false ) );
		$this->assertFalse( get_option( 'tap_order_log_lock_timeout', false ) );
		$this->assertSame( array(), tap_test_pending_actions( TAP_Retry_Queue::HOOK ) );
		$this->assertSame( array( 'someone_elses_hook' ), array_column( $GLOBALS['tap_wp_cron'], 'hook' ) );
	}

	public function test_uninstall_does_nothing_when_called_directly(): void {
		$code = 'echo "before"; include ' . var_export( dirname( TAP_PLUGIN_FILE ) . '/uninstall.php', true ) . '; echo "after";';
		$this->assertSame( 'before', shell_exec( escapeshellarg( PHP_BINARY ) . ' -r ' . escapeshellarg( $code ) ) );
	}

	public function test_plugin_files_exit_when_loaded_outside_wordpress(): void {
		$files = glob( dirname( TAP_PLUGIN_FILE ) . '/{,includes/}*.php', GLOB_BRACE );
		$this->assertNotEmpty( $files );
		foreach ( $files as $file ) {
			if ( 'index.php' === basename( $file ) ) {
				continue; // "Silence is golden" placeholders: they print nothing either way.
			}
			$code = 'echo "before"; include ' . var_export( $file, true ) . '; echo "after";';
			$this->assertSame( 'before', shell_exec( escapeshellarg( PHP_BINARY ) . ' -r ' . escapeshellarg( $code ) . ' 2>&1' ), basename( $file ) );
		}
	}
}
