<?php
/**
 * One paid line per order, exactly once, through each checkout and gateway path (the other
 * events: OrderEventsTest).
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require_once __DIR__ . '/TapTestCase.php';

final class OrderLoggerTest extends TapTestCase {

	/** A shopper who started the visit 95 s ago and viewed 4 pages. */
	private function shopper_cookies() {
		return array( 'visit_start_time' => (string) ( $this->now - 95 ), 'tap_pages_viewed' => '4' );
	}

	public function test_block_checkout_cash_on_delivery_writes_one_line(): void {
		$this->new_request( $this->shopper_cookies() );
		$order = tap_test_make_order( array( 'id' => 501, 'payment_method' => 'cod' ) );

		// Store API checkout: the hook, then the COD gateway moves the order to processing.
		do_action( 'woocommerce_store_api_checkout_order_processed', $order );
		wc_get_order( 501 )->update_status( 'processing' );

		$events = $this->log_events();
		$this->assertCount( 1, $events );
		$this->assertSame( 501, $events[0]['order_id'] );
		$this->assertSame( 95, $events[0]['duration_session'] );
		$this->assertSame( 4, $events[0]['pages_viewed'] );
		$this->assertNotSame( '', wc_get_order( 501 )->get_meta( TAP_Order_Logger::META_LOGGED ) );
		$this->assertSame( array(), $this->errors_reported() );

		// The purchase ended the visit: both cookies deleted in the checkout response.
		$this->assertSame( '', $this->jar->last( 'visit_start_time' )['value'] );
		$this->assertSame( '', $this->jar->last( 'tap_pages_viewed' )['value'] );
		$this->assertArrayNotHasKey( 'visit_start_time', $_COOKIE );
	}

	public function test_classic_checkout_bank_transfer_writes_nothing_at_on_hold_and_the_paid_line_when_marked_paid(): void {
		$this->new_request( $this->shopper_cookies() );
		$order = tap_test_make_order( array( 'id' => 502, 'payment_method' => 'bacs' ) );

		do_action( 'woocommerce_checkout_order_processed', 502, array( 'payment_method' => 'bacs' ), $order );
		wc_get_order( 502 )->update_status( 'on-hold' );
		$this->assertSame( array(), $this->log_lines(), 'placed, not paid' );

		// Days later the admin sees the transfer and marks the order paid, then completed.
		$this->now += 3 * 86400;
		$GLOBALS['tap_wp_env']['is_admin'] = true;
		$this->new_request( array( 'visit_start_time' => (string) ( $this->now - 5 ) ) );
		wc_get_order( 502 )->payment_complete();
		wc_get_order( 502 )->update_status( 'completed' );

		$events = $this->log_events();
		$this->assertCount( 1, $events );
		$this->assertSame( '2026-11-27T10:20:00+01:00', $events[0]['timestamp'], 'the day it was paid' );
		$this->assertSame( 95, $events[0]['duration_session'], 'the visit recorded at checkout, not the admin\'s cookies' );
	}

	public function test_card_gateway_payment_complete_fires_status_and_payment_hooks_but_writes_once(): void {
		$this->new_request( $this->shopper_cookies() );
		$order = tap_test_make_order( array( 'id' => 503, 'payment_method' => 'stripe' ) );
		do_action( 'woocommerce_checkout_order_processed', 503, array(), $order );

		wc_get_order( 503 )->payment_complete( 'txn_1' ); // processing transition + woocommerce_payment_complete
		$this->assertSame( 1, did_action( 'woocommerce_order_status_changed' ) );
		$this->assertSame( 1, did_action( 'woocommerce_payment_complete' ) );
		$this->assertCount( 1, $this->log_lines() );
	}

	public function test_payment_gateway_callback_in_another_request_uses_the_checkout_visit(): void {
		$this->new_request( $this->shopper_cookies() );
		$order = tap_test_make_order( array( 'id' => 504, 'payment_method' => 'paypal' ) );
		do_action( 'woocommerce_store_api_checkout_order_processed', $order );
		$this->assertSame( array(), $this->log_lines(), 'nothing before payment' );

		// The gateway's server-to-server callback: no shopper cookies.
		$this->now += 40;
		$this->new_request( array() );
		wc_get_order( 504 )->payment_complete( 'PAY-1' );
		$events = $this->log_events();
		$this->assertCount( 1, $events );
		$this->assertSame( 95, $events[0]['duration_session'] );
		$this->assertSame( array(), $this->jar->sent, 'the callback does not touch cookies' );

		// The shopper lands on the thank-you page: the visit ends there, once.
		$this->new_request( $this->shopper_cookies() );
		$GLOBALS['tap_wp_env']['wc_endpoint'] = 'order-received';
		$GLOBALS['tap_wp_env']['query_vars']  = array( 'order-received' => 504 );
		do_action( 'template_redirect' );
		$this->assertSame( (string) $this->now, $_COOKIE['visit_start_time'], 'a new visit started' );
		$this->assertSame( '1', $_COOKIE['tap_pages_viewed'] );

		// Reloading the thank-you page: no new line, and the new visit keeps running.
		$this->now += 30;
		$this->new_request();
		do_action( 'template_redirect' );
		do_action( 'woocommerce_thankyou', 504 );
		$this->assertSame( (string) ( $this->now - 30 ), $_COOKIE['visit_start_time'] );
		$this->assertSame( '2', $_COOKIE['tap_pages_viewed'] );
		$this->assertCount( 1, $this->log_lines() );
	}

	public function test_double_firing_writes_one_line(): void {
		$this->new_request( $this->shopper_cookies() );
		tap_test_make_order( array( 'id' => 505, 'status' => 'processing' ) );

		do_action( 'woocommerce_order_status_changed', 505, 'pending', 'processing', wc_get_order( 505 ) );
		do_action( 'woocommerce_order_status_changed', 505, 'pending', 'processing', wc_get_order( 505 ) );
		do_action( 'woocommerce_payment_complete', 505, '' );
		do_action( 'woocommerce_payment_complete', 505, '' );
		do_action( 'woocommerce_order_status_changed', 505, 'processing', 'completed', wc_get_order( 505 ) );
		$this->assertCount( 1, $this->log_lines() );

		// Same hooks again in later requests (new objects, no in-memory state): the meta flag holds.
		for ( $i = 0; $i < 3; $i++ ) {
			$this->new_request();
			do_action( 'woocommerce_payment_complete', 505, '' );
			do_action( 'woocommerce_order_status_changed', 505, 'on-hold', 'processing', wc_get_order( 505 ) );
		}
		$this->assertCount( 1, $this->log_lines() );
	}

	public function test_reloaded_thank_you_page_writes_nothing(): void {
		tap_test_make_order( array( 'id' => 506 ) );
		wc_get_order( 506 )->update_status( 'processing' );
		$this->assertCount( 1, $this->log_lines() );

		$GLOBALS['tap_wp_env']['wc_endpoint'] = 'order-received';
		$GLOBALS['tap_wp_env']['query_vars']  = array( 'order-received' => 506 );
		for ( $i = 0; $i < 5; $i++ ) {
			$this->new_request();
			do_action( 'template_redirect' );
			do_action( 'woocommerce_thankyou', 506 );
		}
		$this->assertCount( 1, $this->log_lines() );
	}

	public function test_unpaid_statuses_write_no_paid_line(): void {
		tap_test_make_order( array( 'id' => 507 ) );
		foreach ( array( 'checkout-draft', 'pending', 'on-hold', 'refunded' ) as $status ) {
			wc_get_order( 507 )->update_status( $status );
		}
		$this->assertSame( array(), $this->log_lines() );
		foreach ( array( 'cancelled', 'failed' ) as $status ) {
			wc_get_order( 507 )->update_status( $status );
		}
		$this->assertSame( array( 'cancelled', 'failed' ), array_column( $this->log_events(), 'event_type' ), 'their own events, no paid one' );

		// A failed order that is paid later is written as paid then.
		wc_get_order( 507 )->payment_complete();
		$this->assertSame( array( 'cancelled', 'failed', 'paid' ), array_column( $this->log_events(), 'event_type' ) );
	}

	public function test_each_order_gets_its_own_line(): void {
		for ( $id = 600; $id < 610; $id++ ) {
			tap_test_make_order( array( 'id' => $id ) );
			wc_get_order( $id )->update_status( 'processing' );
		}
		$ids = array_column( $this->log_events(), 'order_id' );
		$this->assertSame( range( 600, 609 ), $ids );
	}

	/** A log writer whose appends fail (a full disk) until told otherwise. */
	private function failing_writer() {
		return new class() extends TAP_Log_Writer {
			public $failing = true;
			public function append( $path, $line, $lock_timeout = null ) {
				if ( $this->failing ) {
					throw new RuntimeException( 'Could not write 412 bytes to ' . $path . ': No space left on device' );
				}
				parent::append( $path, $line, $lock_timeout );
			}
		};
	}

	public function test_write_failure_never_breaks_checkout_and_is_retried_later(): void {
		$writer = $this->failing_writer();
		$this->new_request( null, $writer );

		tap_test_make_order( array( 'id' => 508 ) );
		wc_get_order( 508 )->update_status( 'processing' ); // must not throw

		$this->assertSame( '', wc_get_order( 508 )->get_meta( TAP_Order_Logger::META_LOGGED ), 'not flagged: not written' );
		$errors = $this->errors_reported();
		$this->assertCount( 1, $errors );
		$this->assertStringContainsString( 'Order 508 was not written', $errors[0] );
		$this->assertStringContainsString( 'queued for a retry', $errors[0] );
		$this->assertSame( 'tap-order-logger', $GLOBALS['tap_wc_logger']->entries[0]['context']['source'] );
		$this->assertCount( 1, tap_test_pending_actions( TAP_Retry_Queue::HOOK ) );

		// Space freed; the next paid/placed hook writes the line, and the queued retry then adds none.
		$writer->failing = false;
		$this->new_request( null, $writer );
		wc_get_order( 508 )->update_status( 'completed' );
		$this->assertCount( 1, $this->log_lines() );
		tap_test_run_due_actions( $this->now );
		$this->assertCount( 1, $this->log_lines() );
	}

	public function test_exceptions_from_woocommerce_are_caught(): void {
		add_filter( 'tap_order_log_path', static function () {
			throw new RuntimeException( 'boom' );
		} );
		tap_test_make_order( array( 'id' => 509 ) );
		wc_get_order( 509 )->update_status( 'processing' );
		$this->assertStringContainsString( 'boom', $this->errors_reported()[0] );
	}

	public function test_order_without_product_lines_is_reported_not_written(): void {
		tap_test_make_order( array( 'id' => 510, 'items' => array() ) );
		wc_get_order( 510 )->update_status( 'processing' );
		$this->assertSame( array(), $this->log_lines() );
		$this->assertStringContainsString( 'no product lines', $this->errors_reported()[0] );
	}

	public function test_refused_path_falls_back_to_default_and_reports(): void {
		update_option( 'tap_order_log_path', ABSPATH . 'wp-content/uploads/orders.log' );
		tap_test_make_order( array( 'id' => 511 ) );
		wc_get_order( 511 )->update_status( 'processing' );
		$this->assertCount( 1, $this->log_lines() );
		$this->assertFileDoesNotExist( ABSPATH . 'wp-content/uploads/orders.log' );
		$this->assertStringContainsString( 'Refused log path', $this->errors_reported()[0] );
	}

	public function test_order_created_in_admin_without_a_visit_gets_neutral_figures(): void {
		$GLOBALS['tap_wp_env']['is_admin'] = true;
		$this->new_request( $this->shopper_cookies() );
		tap_test_make_order( array( 'id' => 512 ) );
		wc_get_order( 512 )->update_status( 'processing' );
		$event = $this->log_events()[0];
		$this->assertSame( 0, $event['duration_session'] );
		$this->assertSame( 1, $event['pages_viewed'] );
		$this->assertSame( array(), $this->jar->sent );
	}

	public function test_logged_hook_announces_the_line(): void {
		$seen = array();
		add_action( 'tap_order_logged', static function ( $id, $line, $event_id ) use ( &$seen ) {
			$seen[] = array( $id, $line, $event_id );
		}, 10, 3 );
		tap_test_make_order( array( 'id' => 513 ) );
		wc_get_order( 513 )->update_status( 'processing' );
		wc_get_order( 513 )->update_status( 'cancelled' );
		$this->assertSame( array( 513, 513 ), array_column( $seen, 0 ) );
		$this->assertSame( $this->log_lines(), array_column( $seen, 1 ) );
		$this->assertSame( array( '513-paid', '513-cancelled' ), array_column( $seen, 2 ) );
	}
}
