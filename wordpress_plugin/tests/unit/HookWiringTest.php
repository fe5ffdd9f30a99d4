<?php
/**
 * The plugin hooks in where the README says, and nowhere else.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require_once __DIR__ . '/TapTestCase.php';

final class HookWiringTest extends TapTestCase {

	public function test_main_file_registers_activation_boot_and_compatibility(): void {
		$loaded = $GLOBALS['tap_hooks_at_load'];
		$this->assertArrayHasKey( 'activate_tap-order-logger/tap-order-logger.php', $loaded );
		$this->assertSame( array( 'TAP_Plugin', 'boot' ), $loaded['plugins_loaded'][10][0][0] );
		$this->assertSame( array( 'TAP_Plugin', 'declare_woocommerce_compatibility' ), $loaded['before_woocommerce_init'][10][0][0] );
	}

	public function test_boot_wires_every_hook_once(): void {
		tap_test_reset_hooks();
		$plugin = TAP_Plugin::boot();
		$this->assertSame( $plugin, TAP_Plugin::boot(), 'boot() is idempotent' );

		$logger  = $plugin->order_logger;
		$session = $plugin->session;
		$expected = array(
			array( 'woocommerce_checkout_order_processed', array( $logger, 'on_classic_checkout' ), 10, 3 ),
			array( 'woocommerce_store_api_checkout_order_processed', array( $logger, 'on_block_checkout' ), 10, 1 ),
			array( 'woocommerce_order_status_changed', array( $logger, 'on_status_changed' ), 10, 3 ),
			array( 'woocommerce_payment_complete', array( $logger, 'on_payment_complete' ), 10, 1 ),
			array( 'woocommerce_refund_created', array( $logger, 'on_refund_created' ), 10, 2 ),
			array( 'woocommerce_order_refunded', array( $logger, 'on_order_refunded' ), 10, 2 ),
			array( 'template_redirect', array( $logger, 'on_order_received_page' ), 15, 0 ),
			array( 'template_redirect', array( $session, 'on_page_view' ), 20, 0 ),
			array( 'wp_login', array( $session, 'reset' ), 10, 0 ),
			array( 'tap_order_logger_retry_write', array( $logger, 'run_retry' ), 10, 5 ),
			array( 'wp_privacy_personal_data_exporters', array( $plugin->privacy, 'register_exporter' ), 10, 1 ),
			array( 'wp_privacy_personal_data_erasers', array( $plugin->privacy, 'register_eraser' ), 10, 1 ),
			array( 'admin_init', array( $plugin->privacy, 'add_policy_content' ), 10, 1 ),
			array( 'init', array( $plugin->consent, 'register_cookie_info' ), 10, 1 ),
			array( 'wp_consent_api_registered_tap-order-logger/tap-order-logger.php', '__return_true', 10, 1 ),
		);
		foreach ( $expected as list( $hook, $callback, $priority, $args ) ) {
			$found = array_values( array_filter(
				tap_test_callbacks( $hook ),
				static function ( $entry ) use ( $callback ) {
					return $entry['callback'] === $callback;
				}
			) );
			$this->assertCount( 1, $found, "$hook -> " . ( is_array( $callback ) ? $callback[1] : $callback ) );
			$this->assertSame( $priority, $found[0]['priority'], "$hook priority" );
			$this->assertSame( $args, $found[0]['args'], "$hook accepted args" );
		}
	}

	public function test_thank_you_page_and_pre_payment_hooks_never_write(): void {
		$this->assertFalse( has_action( 'woocommerce_thankyou' ), 'woocommerce_thankyou runs on every view of the page' );
		$this->assertFalse( has_action( 'woocommerce_order_status_processing' ) );
		$this->assertFalse( has_action( 'woocommerce_order_status_completed' ) );
		$this->assertFalse( has_action( 'woocommerce_order_status_on-hold' ) );
		$this->assertFalse( has_action( 'woocommerce_order_fully_refunded' ), 'the refund hooks carry the refund id; these fire before them' );
		$this->assertFalse( has_action( 'woocommerce_order_partially_refunded' ) );
		$this->assertNotFalse( has_action( 'init' ), 'text domain loads on init' );
	}

	public function test_retry_hook_is_there_on_every_request(): void {
		// Action Scheduler's runner and WP-Cron run in requests of their own; a missing callback
		// makes Action Scheduler fail the action.
		foreach ( array( 'is_admin', 'doing_cron', 'doing_ajax' ) as $flag ) {
			tap_test_reset_env();
			$GLOBALS['tap_wp_env'][ $flag ] = true;
			$this->new_request();
			$this->assertSame( 10, has_action( TAP_Retry_Queue::HOOK, array( $this->plugin->order_logger, 'run_retry' ) ), $flag );
		}
	}

	public function test_settings_screen_only_in_admin(): void {
		$this->assertFalse( has_action( 'admin_menu' ) );
		$GLOBALS['tap_wp_env']['is_admin'] = true;
		$this->new_request();
		$this->assertSame( 10, has_action( 'admin_menu', array( $this->plugin->settings, 'add_page' ) ) );
		$this->assertSame( 10, has_action( 'admin_init', array( $this->plugin->settings, 'register_setting' ) ) );
	}

	public function test_default_logged_statuses_are_paid_ones_and_filterable(): void {
		$this->assertSame( array( 'processing', 'completed' ), $this->plugin->order_logger->logged_statuses(), 'on-hold is not paid' );
		add_filter( 'tap_order_logged_statuses', static function () {
			return array( 'completed' );
		} );
		$this->assertSame( array( 'completed' ), $this->plugin->order_logger->logged_statuses() );
	}
}
