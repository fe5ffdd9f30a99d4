<?php
/**
 * Base test: a clean "request" per test, with the plugin wired as WordPress would wire it.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

use PHPUnit\Framework\TestCase;

abstract class TapTestCase extends TestCase {

	/** Fixed "now": 2026-11-24 09:20:00 UTC. */
	const NOW = 1795512000;

	/** @var int */
	protected $now = self::NOW;

	/** @var TAP_Recording_Cookie_Jar */
	protected $jar;

	/** @var TAP_Plugin */
	protected $plugin;

	protected function setUp(): void {
		tap_test_reset_hooks();
		tap_test_reset_env();
		TAP_Test_Store::reset();
		$GLOBALS['tap_wp_options']  = array( 'timezone_string' => 'Europe/Rome' );
		$GLOBALS['tap_wp_settings'] = array( 'errors' => array(), 'registered' => array(), 'pages' => array() );
		$GLOBALS['tap_wp_terms']    = array();
		$GLOBALS['tap_wc_logger']->entries = array();
		$GLOBALS['tap_wp_cron']             = array();
		$GLOBALS['tap_wp_users']            = array();
		$GLOBALS['tap_wp_privacy']          = array( 'policy' => array(), 'wrong' => array() );
		if ( function_exists( 'tap_test_reset_action_scheduler' ) ) {
			tap_test_reset_action_scheduler();
		}
		if ( isset( $GLOBALS['tap_consent'] ) ) {
			$GLOBALS['tap_consent'] = array( 'type' => '', 'cookies' => array() );
		}
		$_COOKIE = array();
		$_GET    = array();
		unset( $_SERVER['DOCUMENT_ROOT'], $_SERVER['HTTP_SEC_PURPOSE'], $_SERVER['HTTP_PURPOSE'], $_SERVER['HTTP_X_MOZ'] );
		$_SERVER['REQUEST_METHOD'] = 'GET';
		$_SERVER['REQUEST_URI']    = '/';
		tap_test_remove_tree( TAP_TEST_SITE . '/tap-logs' );
		tap_test_remove_tree( TAP_TEST_ROOT . '/outside' );
		$this->now = self::NOW;
		// WooCommerce's own "now" (paid dates, refund dates) in the doubles: the same clock.
		$GLOBALS['tap_test_clock'] = function () {
			return $this->now;
		};
		$this->new_request();
	}

	/**
	 * A new PHP request: empty hook registry, new plugin objects (no in-memory state), same
	 * "database" and options. Cookies are kept unless $cookies is given; $writer replaces the
	 * log writer (one with a test clock, one that fails).
	 */
	protected function new_request( array $cookies = null, TAP_Log_Writer $writer = null ) {
		if ( null !== $cookies ) {
			$_COOKIE = $cookies;
		}
		tap_test_reset_hooks();
		$this->jar    = new TAP_Recording_Cookie_Jar();
		$this->plugin = new TAP_Plugin(
			$this->jar,
			function () {
				return $this->now;
			},
			$writer
		);
		$this->plugin->register_hooks();
	}

	/** Runs PHP code in a child process (for constants, environments and missing functions). */
	protected function run_child( $code, array $env = array() ) {
		$prefix = '';
		foreach ( $env as $name => $value ) {
			$prefix .= $name . '=' . escapeshellarg( $value ) . ' ';
		}
		$code = 'require ' . var_export( dirname( __DIR__ ) . '/bootstrap.php', true ) . '; ' . $code;
		return (string) shell_exec( $prefix . escapeshellarg( PHP_BINARY ) . ' -r ' . escapeshellarg( $code ) . ' 2>&1' );
	}

	protected function default_log() {
		return TAP_TEST_SITE . '/tap-logs/orders.log';
	}

	/** @return string[] the log's lines, newline included */
	protected function log_lines( $path = null ) {
		$path = $path ?: $this->default_log();
		if ( ! file_exists( $path ) ) {
			return array();
		}
		clearstatcache();
		$text = file_get_contents( $path );
		return '' === $text ? array() : preg_split( '/(?<=\n)/', $text, -1, PREG_SPLIT_NO_EMPTY );
	}

	/** @return array[] decoded log lines */
	protected function log_events( $path = null ) {
		return array_map(
			static function ( $line ) {
				return json_decode( $line, true, 512, JSON_THROW_ON_ERROR );
			},
			$this->log_lines( $path )
		);
	}

	protected function errors_reported() {
		return $GLOBALS['tap_wc_logger']->messages( 'error' );
	}

	protected function schema() {
		return json_decode( file_get_contents( TAP_REPO_ROOT . '/contracts/order.schema.json' ), true, 512, JSON_THROW_ON_ERROR );
	}
}
