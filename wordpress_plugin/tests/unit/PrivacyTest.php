<?php
/**
 * WordPress privacy tools: the exporter says what the plugin stored and where the line went,
 * the eraser removes the plugin's meta and records the request, the policy text is suggested.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require_once __DIR__ . '/TapTestCase.php';

final class PrivacyTest extends TapTestCase {

	/** Lorenzo's orders: 901 logged with a visit, 902 placed and not paid yet; 903 is Anna's. */
	private function orders() {
		$this->new_request( array( 'visit_start_time' => (string) ( $this->now - 95 ), 'tap_pages_viewed' => '4' ) );
		foreach ( array( 901, 902 ) as $id ) {
			$order = tap_test_make_order( array( 'id' => $id, 'billing_email' => 'lorenzo@example.com' ) );
			do_action( 'woocommerce_checkout_order_processed', $id, array(), $order );
		}
		wc_get_order( 901 )->update_status( 'processing' );
		$this->new_request( array( 'visit_start_time' => (string) ( $this->now - 30 ) ) );
		$order = tap_test_make_order( array( 'id' => 903, 'billing_email' => 'anna@example.com', 'customer_id' => 8 ) );
		do_action( 'woocommerce_checkout_order_processed', 903, array(), $order );
		wc_get_order( 903 )->update_status( 'processing' );
		$this->assertCount( 2, $this->log_lines() );
	}

	/** The registered callback, called as WordPress's privacy tools call it. */
	private function call( $filter, $email, $page = 1 ) {
		$registered = apply_filters( $filter, array() );
		$this->assertArrayHasKey( 'tap-order-logger', $registered );
		$entry = $registered['tap-order-logger'];
		$this->assertArrayHasKey( 'wp_privacy_personal_data_exporters' === $filter ? 'exporter_friendly_name' : 'eraser_friendly_name', $entry );
		$this->assertIsCallable( $entry['callback'] );
		return call_user_func( $entry['callback'], $email, $page );
	}

	private function fields( array $group ) {
		return array_column( $group['data'], 'value', 'name' );
	}

	public function test_exporter_returns_the_plugins_meta_and_says_the_line_was_sent(): void {
		$this->orders();
		$export = $this->call( 'wp_privacy_personal_data_exporters', 'lorenzo@example.com' );

		$this->assertTrue( $export['done'] );
		$this->assertSame( array( 'tap-order-901', 'tap-order-902' ), array_column( $export['data'], 'item_id' ) );
		foreach ( $export['data'] as $group ) {
			$this->assertSame( 'tap-order-logger', $group['group_id'] );
			$this->assertNotEmpty( $group['group_label'] );
			foreach ( $group['data'] as $row ) {
				$this->assertSame( array( 'name', 'value' ), array_keys( $row ) );
			}
		}
		$logged = $this->fields( $export['data'][0] );
		$this->assertSame( '#901', $logged['Order'] );
		$this->assertSame( '95', $logged['Visit duration before the order (seconds)'] );
		$this->assertSame( '4', $logged['Pages viewed in that visit'] );
		$this->assertSame( gmdate( 'Y-m-d H:i:s', $this->now ), $logged['Visit recorded at (UTC)'] );
		$this->assertStringStartsWith( 'Yes, at ', $logged['Sent to the analytics pipeline'] );
		$this->assertStringContainsString( 'e-mail address', $logged['Sent to the analytics pipeline'] );
		$this->assertStringContainsString( 'TAP analytics pipeline', $logged['Sent to the analytics pipeline'] );

		$this->assertSame( 'No', $this->fields( $export['data'][1] )['Sent to the analytics pipeline'] );

		$nobody = $this->call( 'wp_privacy_personal_data_exporters', 'nobody@example.com' );
		$this->assertSame( array( 'data' => array(), 'done' => true ), $nobody );
	}

	public function test_exporter_finds_a_registered_customers_orders_by_user_id_too(): void {
		$this->orders();
		$GLOBALS['tap_wp_users']['anna.new@example.com'] = 8; // Anna changed her account e-mail
		$export = $this->call( 'wp_privacy_personal_data_exporters', 'anna.new@example.com' );
		$this->assertSame( array( 'tap-order-903' ), array_column( $export['data'], 'item_id' ) );
	}

	public function test_exporter_and_eraser_page_ten_orders_at_a_time(): void {
		for ( $id = 1; $id <= 12; $id++ ) {
			tap_test_make_order( array( 'id' => 1000 + $id, 'billing_email' => 'many@example.com' ) );
			wc_get_order( 1000 + $id )->update_status( 'processing' );
		}
		$first  = $this->call( 'wp_privacy_personal_data_exporters', 'many@example.com', 1 );
		$second = $this->call( 'wp_privacy_personal_data_exporters', 'many@example.com', 2 );
		$this->assertCount( 10, $first['data'] );
		$this->assertFalse( $first['done'] );
		$this->assertCount( 2, $second['data'] );
		$this->assertTrue( $second['done'] );

		$this->assertFalse( $this->call( 'wp_privacy_personal_data_erasers', 'many@example.com', 1 )['done'] );
		$this->assertTrue( $this->call( 'wp_privacy_personal_data_erasers', 'many@example.com', 2 )['done'] );
		for ( $id = 1; $id <= 12; $id++ ) {
			$this->assertSame( '', wc_get_order( 1000 + $id )->get_meta( TAP_Order_Logger::META_LOGGED ), "order $id" );
		}
	}

	public function test_eraser_removes_the_plugins_meta_and_records_the_request(): void {
		$this->orders();
		$heard = array();
		add_action( 'tap_order_logger_privacy_erasure_requested', static function ( $email, $order_ids ) use ( &$heard ) {
			$heard[] = array( $email, $order_ids );
		}, 10, 2 );
		$lines_before = $this->log_lines();

		$result = $this->call( 'wp_privacy_personal_data_erasers', 'lorenzo@example.com' );

		$this->assertSame( array( 'items_removed', 'items_retained', 'messages', 'done' ), array_keys( $result ) );
		$this->assertTrue( $result['items_removed'] );
		$this->assertTrue( $result['items_retained'], 'the line sent to the pipeline is beyond WordPress' );
		$this->assertTrue( $result['done'] );
		$this->assertCount( 1, $result['messages'] );
		$this->assertStringContainsString( '#901', $result['messages'][0] );
		$this->assertStringNotContainsString( '#902', $result['messages'][0] );
		$this->assertStringContainsString( 'erase them in the pipeline', $result['messages'][0] );

		foreach ( array( 901, 902 ) as $id ) {
			$order = wc_get_order( $id );
			foreach ( TAP_Privacy::META_KEYS as $key ) {
				$this->assertSame( '', $order->get_meta( $key ), "$id $key" );
			}
			$this->assertSame( gmdate( 'Y-m-d\TH:i:s\Z', $this->now ), $order->get_meta( TAP_Order_Logger::META_ERASED ) );
			$this->assertCount( 1, TAP_Test_Store::$notes[ $id ] );
			$this->assertStringStartsWith( 'privacy_erasure_requested: ', TAP_Test_Store::$notes[ $id ][0] );
		}
		$this->assertStringContainsString( 'must be erased there', TAP_Test_Store::$notes[901][0] );
		$this->assertStringContainsString( 'No order line had been written', TAP_Test_Store::$notes[902][0] );
		$this->assertSame( array( array( 'lorenzo@example.com', array( 901 ) ) ), $heard );

		// Anna's order is untouched, and nothing was added to the orders log.
		$this->assertSame( '30', wc_get_order( 903 )->get_meta( TAP_Order_Logger::META_DURATION ) );
		$this->assertArrayNotHasKey( 903, TAP_Test_Store::$notes );
		$this->assertSame( $lines_before, $this->log_lines(), 'no erasure event in the orders log: the contract has none' );
	}

	public function test_erased_orders_are_never_written_again(): void {
		$this->orders();
		$this->call( 'wp_privacy_personal_data_erasers', 'lorenzo@example.com' );

		// 901 completed (its flag is gone) and 902 paid at last: neither goes to the log.
		$this->new_request();
		wc_get_order( 901 )->update_status( 'completed' );
		wc_get_order( 902 )->payment_complete();
		do_action_ref_array( TAP_Retry_Queue::HOOK, array( 902, 1 ) ); // a retry queued before the erasure
		do_action( 'woocommerce_checkout_order_processed', 902, array(), wc_get_order( 902 ) );
		$this->assertCount( 2, $this->log_lines() );
		$this->assertSame( '', wc_get_order( 902 )->get_meta( TAP_Order_Logger::META_DURATION ), 'no new visit data either' );

		// The exporter still tells the customer what happened.
		$export = $this->call( 'wp_privacy_personal_data_exporters', 'lorenzo@example.com' );
		$this->assertSame( gmdate( 'Y-m-d\TH:i:s\Z', $this->now ), $this->fields( $export['data'][0] )['Erasure requested at (UTC)'] );
	}

	public function test_every_event_counts_as_sent_and_every_flag_is_erased(): void {
		$this->orders();
		wc_get_order( 902 )->update_status( 'cancelled' ); // never paid: its cancelled line went out
		$refund = wc_create_refund( array( 'order_id' => 901, 'amount' => '5.00' ) );
		$this->assertCount( 4, $this->log_lines() );

		$export = $this->call( 'wp_privacy_personal_data_exporters', 'lorenzo@example.com' );
		foreach ( $export['data'] as $group ) {
			$this->assertStringStartsWith( 'Yes, at ', $this->fields( $group )['Sent to the analytics pipeline'], $group['item_id'] );
		}

		$result = $this->call( 'wp_privacy_personal_data_erasers', 'lorenzo@example.com' );
		$this->assertStringContainsString( '#901, #902', $result['messages'][0] );
		$this->assertSame( '', wc_get_order( 901 )->get_meta( '_tap_logged_refund_' . $refund->get_id() ) );
		$this->assertSame( '', wc_get_order( 902 )->get_meta( '_tap_logged_cancelled' ) );
		$this->assertStringContainsString( 'must be erased there', TAP_Test_Store::$notes[902][0] );
	}

	public function test_eraser_for_a_customer_without_lines_retains_nothing(): void {
		tap_test_make_order( array( 'id' => 904, 'billing_email' => 'quiet@example.com' ) );
		$result = $this->call( 'wp_privacy_personal_data_erasers', 'quiet@example.com' );
		$this->assertFalse( $result['items_removed'] );
		$this->assertFalse( $result['items_retained'] );
		$this->assertSame( array(), $result['messages'] );
		$this->assertSame( array( 'items_removed' => false, 'items_retained' => false, 'messages' => array(), 'done' => true ), $this->call( 'wp_privacy_personal_data_erasers', 'nobody@example.com' ) );
	}

	public function test_policy_text_is_suggested_on_admin_init_in_wp_admin(): void {
		$GLOBALS['tap_wp_env']['is_admin'] = true;
		$this->new_request();
		do_action( 'admin_init' );
		$this->assertSame( array(), $GLOBALS['tap_wp_privacy']['wrong'], 'called where WordPress allows it' );
		$this->assertCount( 1, $GLOBALS['tap_wp_privacy']['policy'] );
		$policy = $GLOBALS['tap_wp_privacy']['policy'][0];
		$this->assertSame( 'TAP Order Logger', $policy['plugin_name'] );
		foreach ( array( 'visit_start_time', 'tap_pages_viewed', 'e-mail address', 'statistics cookies', 'retention', 'privacy-policy-tutorial' ) as $needle ) {
			$this->assertStringContainsString( $needle, $policy['policy_text'] );
		}
	}

	public function test_policy_text_is_not_added_on_the_front_end(): void {
		do_action( 'init' );
		do_action( 'template_redirect' );
		$this->assertSame( array(), $GLOBALS['tap_wp_privacy']['policy'] );
		$this->assertSame( array(), $GLOBALS['tap_wp_privacy']['wrong'] );
	}
}
