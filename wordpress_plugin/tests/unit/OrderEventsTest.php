<?php
/**
 * Every event in an order's life, exactly once and valid against the schema: paid (not at
 * on-hold), refunded (both refund hooks, reloads), cancelled, failed; status bouncing; queued
 * retries of every event type; the refund rules (only for orders whose paid event is in the
 * log); orders logged by 1.x; erased orders.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require_once __DIR__ . '/TapTestCase.php';
require_once __DIR__ . '/SchemaCheck.php';

final class OrderEventsTest extends TapTestCase {

	/** A shopper who started the visit 95 s ago and viewed 4 pages. */
	private function shopper_cookies() {
		return array( 'visit_start_time' => (string) ( $this->now - 95 ), 'tap_pages_viewed' => '4' );
	}

	/** An order placed through the block checkout by that shopper, two product lines. */
	private function checkout( $id, array $spec = array() ) {
		$this->new_request( $this->shopper_cookies() );
		$order = tap_test_make_order(
			$spec + array(
				'id'    => $id,
				'total' => '65.00',
				'items' => array(
					array( 'product_id' => 11, 'name' => 'T-Shirt', 'quantity' => 2, 'total' => '32.79', 'total_tax' => '7.21', 'sku' => 'TS-1', 'categories' => array( 'T-Shirts' ) ),
					array( 'product_id' => 12, 'name' => 'Jeans', 'quantity' => 1, 'total' => '20.49', 'total_tax' => '4.51', 'sku' => 'JE-1', 'categories' => array( 'Jeans' ) ),
				),
			)
		);
		do_action( 'woocommerce_store_api_checkout_order_processed', $order );
		return $order;
	}

	/** The log's events, each checked against the schema. */
	private function events() {
		$events = $this->log_events();
		foreach ( $events as $i => $event ) {
			$this->assertSame( array(), SchemaCheck::errors( $event, $this->schema() ), "line $i: " . json_encode( $event ) );
		}
		return $events;
	}

	private function event_ids() {
		return array_column( $this->events(), 'event_id' );
	}

	/** The shop refunds 1 T-shirt (20 + VAT) from the order screen, in an admin request. */
	private function refund_one_tshirt( $order_id, $reason = 'Taglia sbagliata' ) {
		$GLOBALS['tap_wp_env']['is_admin'] = true;
		$this->new_request( array() );
		return wc_create_refund(
			array(
				'order_id'   => $order_id,
				'amount'     => '20.00',
				'reason'     => $reason,
				'line_items' => array( tap_test_item_id( $order_id, 1 ) => array( 'qty' => 1, 'refund_total' => '16.39', 'refund_tax' => array( 1 => '3.61' ) ) ),
			)
		);
	}

	/** A log writer whose appends fail until told otherwise. */
	private function busy_writer() {
		return new class() extends TAP_Log_Writer {
			public $busy = false;
			public function append( $path, $line, $lock_timeout = null ) {
				if ( $this->busy ) {
					throw new TAP_Log_Lock_Timeout( $path . ' stayed locked by another process for 2.0 s' );
				}
				parent::append( $path, $line, $lock_timeout );
			}
		};
	}

	// Paid ------------------------------------------------------------------------------------

	public function test_on_hold_writes_nothing_and_the_payment_writes_the_paid_event_then(): void {
		$this->checkout( 701, array( 'payment_method' => 'bacs' ) );
		wc_get_order( 701 )->update_status( 'on-hold' );
		$this->assertSame( array(), $this->log_lines(), 'a bank transfer waiting at on-hold is not paid' );

		// Reloads of the thank-you page and the on-hold hook again: still nothing.
		$GLOBALS['tap_wp_env']['wc_endpoint'] = 'order-received';
		$GLOBALS['tap_wp_env']['query_vars']  = array( 'order-received' => 701 );
		for ( $i = 0; $i < 3; $i++ ) {
			$this->new_request();
			do_action( 'template_redirect' );
			do_action( 'woocommerce_thankyou', 701 );
			do_action( 'woocommerce_order_status_changed', 701, 'pending', 'on-hold', wc_get_order( 701 ) );
		}
		$this->assertSame( array(), $this->log_lines() );

		// Two days later the transfer arrives; the admin marks the order processing.
		$this->now += 2 * 86400;
		tap_test_reset_env();
		$GLOBALS['tap_wp_env']['is_admin'] = true;
		$this->new_request( array( 'visit_start_time' => (string) ( $this->now - 5 ) ) );
		wc_get_order( 701 )->update_status( 'processing' );
		wc_get_order( 701 )->update_status( 'completed' );

		$events = $this->events();
		$this->assertSame( array( '701-paid' ), array_column( $events, 'event_id' ) );
		$this->assertSame( 'processing', $events[0]['order_status'] );
		$this->assertSame( '2026-11-26T10:20:00+01:00', $events[0]['timestamp'], 'the day it was paid' );
		$this->assertSame( array( 95, 4 ), array( $events[0]['duration_session'], $events[0]['pages_viewed'] ), 'the checkout\'s visit, not the admin\'s' );
	}

	public function test_on_hold_then_cancelled_writes_cancelled_and_no_paid(): void {
		$this->checkout( 702, array( 'payment_method' => 'bacs' ) );
		wc_get_order( 702 )->update_status( 'on-hold' );
		$this->now += 7 * 86400;
		$this->new_request( array() );
		wc_get_order( 702 )->update_status( 'cancelled' );

		$events = $this->events();
		$this->assertSame( array( '702-cancelled' ), array_column( $events, 'event_id' ) );
		$this->assertSame( array( 'cancelled', 'cancelled' ), array( $events[0]['event_type'], $events[0]['order_status'] ) );
		$this->assertSame( '2026-12-01T10:20:00+01:00', $events[0]['timestamp'] );
		$this->assertSame( 65.0, $events[0]['total'], 'the order as it stands' );
		$this->assertCount( 2, $events[0]['items'] );
		$this->assertSame( 95, $events[0]['duration_session'] );
		$this->assertNotSame( '', wc_get_order( 702 )->get_meta( '_tap_logged_cancelled' ) );
		$this->assertSame( '', wc_get_order( 702 )->get_meta( TAP_Order_Logger::META_LOGGED ) );
	}

	public function test_logged_statuses_filter_can_count_on_hold_again(): void {
		$this->checkout( 703, array( 'payment_method' => 'bacs' ) );
		// A shop that wants placed bank transfers counted (a mu-plugin; hooks are per request).
		add_filter( 'tap_order_logged_statuses', static function ( $statuses ) {
			return array_merge( $statuses, array( 'on-hold' ) );
		} );
		wc_get_order( 703 )->update_status( 'on-hold' );
		$events = $this->events();
		$this->assertSame( array( '703-paid' ), array_column( $events, 'event_id' ) );
		$this->assertSame( 'on-hold', $events[0]['order_status'] );
		$this->assertSame( '2026-11-24T10:20:00+01:00', $events[0]['timestamp'], 'no paid date: when it was written' );
	}

	public function test_failed_payment_then_paid_writes_failed_then_paid(): void {
		$this->checkout( 704, array( 'payment_method' => 'stripe' ) );
		wc_get_order( 704 )->update_status( 'failed' ); // card declined
		wc_get_order( 704 )->update_status( 'failed' );
		$this->now += 120;
		wc_get_order( 704 )->payment_complete( 'txn_2' ); // second card accepted
		$events = $this->events();
		$this->assertSame( array( '704-failed', '704-paid' ), array_column( $events, 'event_id' ) );
		$this->assertSame( array( 'failed', 'processing' ), array_column( $events, 'order_status' ) );
		$this->assertSame( array( '2026-11-24T10:20:00+01:00', '2026-11-24T10:22:00+01:00' ), array_column( $events, 'timestamp' ) );
	}

	// Status bouncing -------------------------------------------------------------------------

	public function test_status_bouncing_back_and_forth_writes_paid_once_and_cancelled_once(): void {
		$this->checkout( 705 );
		foreach ( array( 'processing', 'cancelled', 'processing', 'cancelled', 'completed', 'cancelled', 'failed', 'processing', 'failed' ) as $i => $status ) {
			if ( $i % 2 ) {
				$this->new_request(); // some changes in later requests: only the meta flags remember
			}
			$this->now += 60;
			wc_get_order( 705 )->update_status( $status );
		}
		$events = $this->events();
		$this->assertSame( array( '705-paid', '705-cancelled', '705-failed' ), array_column( $events, 'event_id' ) );
		$this->assertSame( array( 'processing', 'cancelled', 'failed' ), array_column( $events, 'order_status' ) );
	}

	// Refunds ---------------------------------------------------------------------------------

	public function test_partial_refund_writes_one_refunded_event_with_its_lines(): void {
		$this->checkout( 706 );
		wc_get_order( 706 )->update_status( 'processing' );
		$this->now += 3 * 86400;
		$refund = $this->refund_one_tshirt( 706 );
		$this->assertInstanceOf( WC_Order_Refund::class, $refund );
		$this->assertSame( 1, did_action( 'woocommerce_refund_created' ) );
		$this->assertSame( 1, did_action( 'woocommerce_order_refunded' ) );

		$events = $this->events();
		$this->assertSame( array( '706-paid', '706-refund-' . $refund->get_id() ), array_column( $events, 'event_id' ) );
		$event = $events[1];
		$this->assertSame( array( 'refunded', 'processing' ), array( $event['event_type'], $event['order_status'] ), 'a partial refund leaves the status' );
		$this->assertSame( '2026-11-27T10:20:00+01:00', $event['timestamp'], 'the refund\'s own date' );
		$this->assertSame(
			array(
				'refund_id' => $refund->get_id(),
				'amount'    => 20.0,
				'reason'    => 'Taglia sbagliata',
				'items'     => array( array( 'product_id' => 11, 'product_name' => 'T-Shirt', 'sku' => 'TS-1', 'category' => 'T-Shirts', 'quantity' => 1, 'amount' => 20.0 ) ),
			),
			$event['refund']
		);
		$this->assertSame( 65.0, $event['total'] );
		$this->assertCount( 2, $event['items'] );
		$this->assertSame( array( 95, 4 ), array( $event['duration_session'], $event['pages_viewed'] ), 'the visit stored at checkout, on every event' );
		$this->assertSame( array( 7, 'lorenzo@example.com' ), array( $event['customer']['id'], $event['customer']['email'] ) );
		$this->assertNotSame( '', wc_get_order( 706 )->get_meta( '_tap_logged_refund_' . $refund->get_id() ) );
		$this->assertSame( array(), $this->errors_reported() );
	}

	public function test_refund_hooks_firing_again_write_nothing_more(): void {
		$this->checkout( 707 );
		wc_get_order( 707 )->update_status( 'processing' );
		$refund = $this->refund_one_tshirt( 707 ); // both hooks, one request
		$this->assertCount( 2, $this->log_lines() );

		// The refund hooks again, as a page reload or a second handler would fire them, in later
		// requests without memory; and each hook twice in one request.
		for ( $i = 0; $i < 3; $i++ ) {
			$this->new_request();
			do_action( 'woocommerce_refund_created', $refund->get_id(), array( 'order_id' => 707, 'amount' => '20.00' ) );
			do_action( 'woocommerce_refund_created', $refund->get_id(), array() ); // order found from the refund
			do_action( 'woocommerce_order_refunded', 707, $refund->get_id() );
			do_action( 'woocommerce_order_refunded', 707, $refund->get_id() );
		}
		$this->assertSame( array( '707-paid', '707-refund-' . $refund->get_id() ), $this->event_ids() );
	}

	public function test_two_refunds_write_two_events_and_a_full_refund_says_refunded(): void {
		$this->checkout( 708 );
		wc_get_order( 708 )->payment_complete( 'txn_708' );
		$first = $this->refund_one_tshirt( 708 );
		$this->now += 86400;
		$GLOBALS['tap_wp_env']['is_admin'] = true;
		$this->new_request( array() );
		$second = wc_create_refund( array( 'order_id' => 708, 'amount' => '45.00', 'reason' => '' ) ); // what is left, shipping included
		$this->assertSame( 'refunded', wc_get_order( 708 )->get_status() );

		$events = $this->events();
		$this->assertSame( array( '708-paid', '708-refund-' . $first->get_id(), '708-refund-' . $second->get_id() ), array_column( $events, 'event_id' ) );
		$this->assertSame( 'refunded', $events[2]['order_status'], 'the status right after the refund' );
		$this->assertSame( array( 'refund_id' => $second->get_id(), 'amount' => 45.0, 'reason' => '', 'items' => array() ), $events[2]['refund'], 'amount only: no lines' );
		$this->assertEqualsWithDelta( 0.0, $events[0]['total'] - $events[1]['refund']['amount'] - $events[2]['refund']['amount'], 1e-9, 'net zero' );
	}

	public function test_admin_setting_the_status_to_refunded_writes_the_refund_woocommerce_creates(): void {
		$this->checkout( 709 );
		wc_get_order( 709 )->update_status( 'completed' );
		$GLOBALS['tap_wp_env']['is_admin'] = true;
		$this->new_request( array() );
		add_action( 'woocommerce_order_status_refunded', 'tap_test_wc_order_fully_refunded' ); // as WooCommerce hooks it
		wc_get_order( 709 )->update_status( 'refunded' );

		$events = $this->events();
		$this->assertCount( 2, $events );
		$this->assertSame( array( 'paid', 'refunded' ), array_column( $events, 'event_type' ) );
		$this->assertSame( 65.0, $events[1]['refund']['amount'] );
		$this->assertSame( 'Order fully refunded.', $events[1]['refund']['reason'] );
	}

	public function test_refund_of_an_order_whose_paid_event_was_never_written_writes_nothing(): void {
		// Paid before the plugin was activated: no flag, nothing queued.
		tap_test_make_order( array( 'id' => 710, 'status' => 'completed', 'date_paid' => '2026-10-01 10:00:00' ) );
		$refund = wc_create_refund( array( 'order_id' => 710, 'amount' => '5.00' ) );
		$this->assertInstanceOf( WC_Order_Refund::class, $refund );
		$this->assertSame( array(), $this->log_lines(), 'TAP never counted the payment: no refund to take back' );
		$this->assertSame( array(), tap_test_pending_actions( TAP_Retry_Queue::HOOK ) );
		$this->assertSame( array(), $this->errors_reported() );
	}

	public function test_order_logged_by_version_1_is_not_paid_again_and_its_refunds_count(): void {
		$order = tap_test_make_order( array( 'id' => 711, 'status' => 'processing', 'date_paid' => '2026-11-01 10:00:00' ) );
		$order->update_meta_data( TAP_Order_Logger::META_LOGGED, '2026-11-01T10:00:01Z' ); // 1.x wrote its line
		$order->save();
		wc_get_order( 711 )->update_status( 'completed' );
		wc_get_order( 711 )->payment_complete();
		$this->assertSame( array(), $this->log_lines() );

		$refund = wc_create_refund( array( 'order_id' => 711, 'amount' => '20.00', 'line_items' => array( tap_test_item_id( 711 ) => array( 'qty' => 1, 'refund_total' => '20.00' ) ) ) );
		$this->assertSame( array( '711-refund-' . $refund->get_id() ), $this->event_ids() );
	}

	// Without an e-mail -------------------------------------------------------------------------

	public function test_order_without_an_email_writes_valid_events(): void {
		$this->checkout( 712, array( 'billing_email' => '', 'customer_id' => 0, 'payment_method' => 'pos_cash' ) );
		wc_get_order( 712 )->update_status( 'completed' );
		$this->refund_one_tshirt( 712 );
		$events = $this->events();
		$this->assertCount( 2, $events );
		foreach ( $events as $event ) {
			$this->assertSame( array( 'id' => 0, 'first_name' => 'Lorenzo', 'email' => '' ), $event['customer'] );
		}
	}

	// Retries ---------------------------------------------------------------------------------

	public function test_deferred_refund_is_retried_by_the_queued_action_and_written_once(): void {
		$writer = $this->busy_writer();
		$this->checkout( 713 );
		$this->new_request( null, $writer );
		wc_get_order( 713 )->update_status( 'processing' );
		$this->assertCount( 1, $this->log_lines() );

		$writer->busy = true;
		$GLOBALS['tap_wp_env']['is_admin'] = true;
		$this->new_request( array(), $writer );
		$refund = wc_create_refund(
			array( 'order_id' => 713, 'amount' => '20.00', 'line_items' => array( tap_test_item_id( 713, 1 ) => array( 'qty' => 1, 'refund_total' => '16.39', 'refund_tax' => array( '3.61' ) ) ) )
		);
		$this->assertInstanceOf( WC_Order_Refund::class, $refund, 'the refund itself goes through' );
		$this->assertCount( 1, $this->log_lines() );
		$this->assertSame( '', wc_get_order( 713 )->get_meta( '_tap_logged_refund_' . $refund->get_id() ), 'not flagged: not written' );
		$warnings = $GLOBALS['tap_wc_logger']->messages( 'warning' );
		$this->assertCount( 1, $warnings, 'one wait for the lock, though both refund hooks fired' );
		$this->assertStringContainsString( 'Refund ' . $refund->get_id() . ' of order 713 was not written to the orders log yet', $warnings[0] );
		$queued = tap_test_pending_actions( TAP_Retry_Queue::HOOK );
		$this->assertCount( 1, $queued );
		$this->assertSame( array( 713, 1, 'refunded', $refund->get_id(), 0 ), $queued[0]['args'] );

		// The hooks fire again while it is queued: queued once.
		$this->new_request( array(), $writer );
		do_action( 'woocommerce_order_refunded', 713, $refund->get_id() );
		$this->assertCount( 1, tap_test_pending_actions( TAP_Retry_Queue::HOOK ) );

		// The lock is free; Action Scheduler's runner, in a request of its own.
		$writer->busy = false;
		$this->now += 60;
		tap_test_reset_env();
		$this->new_request( array(), $writer );
		tap_test_run_action( $queued[0]['id'] );
		$this->assertSame( 'complete', $GLOBALS['tap_as']['actions'][ $queued[0]['id'] ]['status'] );

		$events = $this->events();
		$this->assertSame( array( '713-paid', '713-refund-' . $refund->get_id() ), array_column( $events, 'event_id' ) );
		$this->assertSame( '2026-11-24T10:20:00+01:00', $events[1]['timestamp'], 'the refund\'s date, not the retry\'s' );
		$this->assertSame( 95, $events[1]['duration_session'] );

		// Run again, by hand, and the hooks again: still once.
		tap_test_run_action( $queued[0]['id'] );
		do_action_ref_array( TAP_Retry_Queue::HOOK, $queued[0]['args'] );
		do_action( 'woocommerce_order_refunded', 713, $refund->get_id() );
		$this->assertCount( 2, $this->log_lines() );
		$this->assertSame( array(), tap_test_pending_actions( TAP_Retry_Queue::HOOK ) );
	}

	public function test_deferred_cancellation_keeps_the_time_it_happened(): void {
		$writer = $this->busy_writer();
		$this->checkout( 714, array( 'payment_method' => 'bacs' ) );
		$writer->busy = true;
		$this->new_request( array(), $writer );
		wc_get_order( 714 )->update_status( 'cancelled' );
		$queued = tap_test_pending_actions( TAP_Retry_Queue::HOOK );
		$this->assertSame( array( 714, 1, 'cancelled', 0, $this->now ), $queued[0]['args'] );

		$writer->busy = false;
		$this->now += 3600;
		$this->new_request( array(), $writer );
		tap_test_run_due_actions( $this->now );
		$events = $this->events();
		$this->assertSame( array( '714-cancelled' ), array_column( $events, 'event_id' ) );
		$this->assertSame( '2026-11-24T10:20:00+01:00', $events[0]['timestamp'], 'when it was cancelled, not when the retry ran' );
	}

	public function test_refund_waits_for_a_paid_event_still_queued(): void {
		$writer       = $this->busy_writer();
		$writer->busy = true;
		$this->checkout( 715 );
		$this->new_request( null, $writer );
		wc_get_order( 715 )->payment_complete( 'txn_715' ); // paid deferred
		$refund = $this->refund_one_tshirt( 715 );
		$this->new_request( array(), $writer );
		do_action( 'woocommerce_order_refunded', 715, $refund->get_id() ); // fired again, lock busy: still waiting
		$this->assertSame( array(), $this->log_lines() );
		$pending = array_column( tap_test_pending_actions( TAP_Retry_Queue::HOOK ), 'args' );
		$this->assertSame( array( array( 715, 1, 'paid', 0, 0 ), array( 715, 1, 'refunded', $refund->get_id(), 0 ) ), $pending, 'the refund waits for the paid event' );

		// The runner takes the actions in order: paid first, then the refund.
		$writer->busy = false;
		tap_test_reset_env();
		$this->new_request( array(), $writer );
		tap_test_run_due_actions( $this->now );
		$this->assertSame( array( '715-paid', '715-refund-' . $refund->get_id() ), $this->event_ids() );
	}

	public function test_refund_retry_that_runs_before_the_paid_retry_waits_and_runs_again(): void {
		$writer       = $this->busy_writer();
		$writer->busy = true;
		$this->checkout( 716 );
		$this->new_request( null, $writer );
		wc_get_order( 716 )->update_status( 'processing' );
		$writer->busy = false;
		$refund       = $this->refund_one_tshirt( 716 ); // lock free now, but paid is not in the log yet
		$this->assertSame( array(), $this->log_lines() );
		$refund_action = array_values( array_filter( tap_test_pending_actions( TAP_Retry_Queue::HOOK ), static function ( $action ) {
			return 'refunded' === $action['args'][2];
		} ) );
		$this->assertCount( 1, $refund_action );

		// The refund's action runs first: the paid one is still queued, so it waits again.
		$this->new_request( array(), $writer );
		tap_test_run_action( $refund_action[0]['id'] );
		$this->assertSame( array(), $this->log_lines() );
		$this->assertSame( array( 716, 2, 'refunded', $refund->get_id(), 0 ), array_reverse( tap_test_pending_actions( TAP_Retry_Queue::HOOK ) )[0]['args'] );

		$this->now += TAP_Retry_Queue::delay( 2 );
		tap_test_run_due_actions( $this->now );
		$this->assertSame( array( '716-paid', '716-refund-' . $refund->get_id() ), $this->event_ids() );
		$this->assertSame( array(), tap_test_pending_actions( TAP_Retry_Queue::HOOK ) );
	}

	public function test_a_retry_queued_by_version_1_writes_the_paid_event(): void {
		tap_test_make_order( array( 'id' => 717, 'status' => 'processing', 'date_paid' => '2026-11-24 09:00:00' ) );
		do_action_ref_array( TAP_Retry_Queue::HOOK, array( 717, 3 ) ); // 1.x queued ( $order_id, $attempt )
		$this->assertSame( array( '717-paid' ), $this->event_ids() );
	}

	// Privacy ---------------------------------------------------------------------------------

	public function test_an_erased_order_writes_no_further_event(): void {
		$this->checkout( 718 );
		wc_get_order( 718 )->update_status( 'processing' );
		$first = $this->refund_one_tshirt( 718 );
		$this->assertCount( 2, $this->log_lines() );

		$erasers = apply_filters( 'wp_privacy_personal_data_erasers', array() );
		$result  = call_user_func( $erasers['tap-order-logger']['callback'], 'lorenzo@example.com', 1 );
		$this->assertTrue( $result['items_retained'] );
		$this->assertSame( array(), TAP_Order_Logger::logged_flags( wc_get_order( 718 ) ), 'every flag removed, refund flags too' );

		$this->new_request();
		wc_create_refund( array( 'order_id' => 718, 'amount' => '5.00' ) );
		do_action( 'woocommerce_order_refunded', 718, $first->get_id() );
		wc_get_order( 718 )->update_status( 'cancelled' );
		wc_get_order( 718 )->update_status( 'failed' );
		wc_get_order( 718 )->update_status( 'completed' );
		$this->assertCount( 2, $this->log_lines() );
	}

	// Every hook, once, valid -----------------------------------------------------------------

	public function test_every_hook_writes_its_event_once_and_valid(): void {
		$hooks = array(
			'paid (status)'      => function () {
				wc_get_order( 720 )->update_status( 'processing' );
			},
			'paid (payment)'     => function () {
				wc_get_order( 721 )->payment_complete( 'txn' );
			},
			'cancelled'          => function () {
				wc_get_order( 722 )->update_status( 'cancelled' );
			},
			'failed'             => function () {
				wc_get_order( 723 )->update_status( 'failed' );
			},
			'refunded (created)' => function () {
				$this->refund_hook_only( 724, 'woocommerce_refund_created' );
			},
			'refunded (order)'   => function () {
				$this->refund_hook_only( 725, 'woocommerce_order_refunded' );
			},
		);
		$id = 720;
		foreach ( $hooks as $what => $fire ) {
			$this->checkout( $id );
			if ( $id >= 724 ) {
				wc_get_order( $id )->update_status( 'processing' );
			}
			$before = count( $this->log_lines() );
			for ( $i = 0; $i < 3; $i++ ) {
				$fire();
				$this->new_request();
			}
			$this->assertCount( $before + 1, $this->log_lines(), $what );
			++$id;
		}
		$this->events(); // every line valid against the schema
	}

	/** A refund saved directly, with only one of the two refund hooks fired (each time). */
	private function refund_hook_only( $order_id, $hook ) {
		$refunds = wc_get_order( $order_id )->get_refunds();
		if ( empty( $refunds ) ) {
			$refund = new WC_Order_Refund( array( 'parent_id' => $order_id, 'amount' => '10.00', 'date_created' => new WC_DateTime( '@' . $this->now ) ) );
			$refund->save();
		} else {
			$refund = $refunds[0];
		}
		if ( 'woocommerce_refund_created' === $hook ) {
			do_action( $hook, $refund->get_id(), array( 'order_id' => $order_id ) );
		} else {
			do_action( $hook, $order_id, $refund->get_id() );
		}
	}
}
