<?php
/**
 * The line: each event type, the schema's keys in the schema's order, its types, and Python's
 * bytes.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require_once __DIR__ . '/TapTestCase.php';
require_once __DIR__ . '/SchemaCheck.php';

final class OrderFormatterTest extends TapTestCase {

	private function line( array $spec, array $session = array( 'duration_session' => 75, 'pages_viewed' => 4 ), array $event = array() ) {
		return TAP_Order_Formatter::line( tap_test_make_order( $spec ), $session, wp_timezone(), $event + array( 'now' => $this->now ) );
	}

	/** A refund of order $order_id as wc_create_refund() stores it: negative lines. */
	private function refund( $order_id, array $lines, $amount, $reason = '', $date = '2026-11-30 15:00:00' ) {
		$items = array();
		foreach ( $lines as $i => $line ) {
			$items[] = new WC_Order_Item_Product( $line + array( 'id' => 70000 + $i ) );
		}
		return new WC_Order_Refund( array( 'id' => 7001, 'parent_id' => $order_id, 'amount' => $amount, 'reason' => $reason, 'date_created' => $date, 'items' => $items ) );
	}

	/** Decoded with objects as arrays; 20.0 stays a float. */
	private function decode( $line ) {
		return json_decode( $line, true, 512, JSON_THROW_ON_ERROR );
	}

	public function test_exact_bytes_of_a_line(): void {
		$line = $this->line(
			array(
				'id'                 => 1042,
				'status'             => 'processing',
				'total'              => '60.00',
				'customer_id'        => 7,
				'billing_first_name' => 'Lorenzo Müller',
				'billing_email'      => 'lorenzo@example.com',
				'date_created'       => '2026-11-24 09:14:00',
				'date_paid'          => '2026-11-24 09:15:03',
				'items'              => array(
					array( 'product_id' => 11, 'name' => 'T-Shirt 100% cotone / bio', 'quantity' => 3, 'total' => '60.00', 'sku' => 'TS-1', 'categories' => array( 'Magliette & Top' ) ),
				),
			)
		);
		$expected = '{"schema_version":2,"event_id":"1042-paid","event_type":"paid","order_id":1042,"order_status":"processing",'
			. '"timestamp":"2026-11-24T10:15:03+01:00","currency":"EUR",'
			. '"total":60.0,"payment_method":"cod","items":[{"product_id":11,"product_name":"T-Shirt 100% cotone / bio",'
			. '"sku":"TS-1","category":"Magliette \\u0026 Top","quantity":3,"unit_price":20.0,"total":60.0}],'
			. '"customer":{"id":7,"first_name":"Lorenzo Müller","email":"lorenzo@example.com"},'
			. '"duration_session":75,"pages_viewed":4}' . "\n";
		$this->assertSame( $expected, $line );
	}

	public function test_key_order_is_the_schema_properties_order(): void {
		$schema = $this->schema();
		$keys   = array_keys( $schema['properties'] );
		$this->assertSame( 'refund', end( $keys ), 'refund comes last' );
		foreach ( array( 'paid', 'cancelled', 'failed' ) as $type ) {
			$event = json_decode( $this->line( array(), array(), array( 'type' => $type ) ), true );
			$this->assertSame( array_slice( $keys, 0, -1 ), array_keys( $event ), $type );
			$this->assertSame( $schema['properties']['items']['items']['required'], array_keys( $event['items'][0] ) );
			$this->assertSame( $schema['properties']['customer']['required'], array_keys( $event['customer'] ) );
		}
		$refund = $this->refund( 101, array( array( 'product_id' => 11, 'name' => 'T-Shirt', 'quantity' => -1, 'total' => '-20.00' ) ), '20.00' );
		$event  = json_decode( $this->line( array(), array(), array( 'type' => 'refunded', 'refund' => $refund ) ), true );
		$this->assertSame( $keys, array_keys( $event ) );
		$this->assertSame( $schema['properties']['refund']['required'], array_keys( $event['refund'] ) );
		$this->assertSame( $schema['properties']['refund']['properties']['items']['items']['required'], array_keys( $event['refund']['items'][0] ) );
	}

	public function test_event_ids_types_and_statuses(): void {
		$cases = array(
			array( array( 'id' => 77, 'status' => 'processing' ), array(), '77-paid', 'paid', 'processing' ),
			array( array( 'id' => 77, 'status' => 'wc-cancelled' ), array( 'type' => 'cancelled' ), '77-cancelled', 'cancelled', 'cancelled' ),
			array( array( 'id' => 77, 'status' => 'failed' ), array( 'type' => 'failed' ), '77-failed', 'failed', 'failed' ),
			array( array( 'id' => 77, 'status' => 'Awaiting Pickup!' ), array(), '77-paid', 'paid', 'awaitingpickup' ),
			array( array( 'id' => 77, 'status' => '' ), array(), '77-paid', 'paid', 'unknown' ),
		);
		foreach ( $cases as list( $spec, $event, $id, $type, $status ) ) {
			$line = json_decode( $this->line( $spec, array(), $event ), true );
			$this->assertSame( array( 2, $id, $type, $status ), array( $line['schema_version'], $line['event_id'], $line['event_type'], $line['order_status'] ) );
		}
		$refund = $this->refund( 77, array(), '5.00' );
		$line   = json_decode( $this->line( array( 'id' => 77, 'status' => 'processing' ), array(), array( 'type' => 'refunded', 'refund' => $refund ) ), true );
		$this->assertSame( array( '77-refund-7001', 'refunded', 'processing' ), array( $line['event_id'], $line['event_type'], $line['order_status'] ) );
	}

	public function test_refund_lines_are_positive_and_empty_ones_left_out(): void {
		$refund = $this->refund(
			101,
			array(
				array( 'product_id' => 11, 'name' => 'T-Shirt', 'quantity' => -2, 'total' => '-32.79', 'total_tax' => '-7.21' ),
				array( 'product_id' => 12, 'name' => 'Calzini', 'quantity' => 0, 'total' => '0.00', 'total_tax' => '0.00' ),
				array( 'product_id' => 13, 'name' => 'Sciarpa', 'quantity' => 0, 'total' => '-3.00' ),
				array( 'product_id' => 0, 'name' => 'Deleted', 'quantity' => -1, 'total' => '-1.00' ),
			),
			'43.00',
			str_repeat( 'Taglia sbagliata. ', 20 )
		);
		$event = $this->decode( $this->line( array( 'total' => '60.00' ), array(), array( 'type' => 'refunded', 'refund' => $refund ) ) );
		$this->assertSame( 7001, $event['refund']['refund_id'] );
		$this->assertSame( 43.0, $event['refund']['amount'] );
		$this->assertSame( 200, mb_strlen( $event['refund']['reason'] ) );
		$this->assertSame(
			array( array( 'product_id' => 11, 'product_name' => 'T-Shirt', 'sku' => 'TS-1', 'category' => 'T-Shirts', 'quantity' => 2, 'amount' => 40.0 ) ),
			$event['refund']['items'],
			'taxes included, as on the paid line; lines without units given back are left out'
		);
		$this->assertSame( 60.0, $event['total'], 'the order total as charged, also on a refund' );
		$this->assertCount( 1, $event['items'], 'the whole order as it stands' );
		$this->assertSame( '2026-11-30T16:00:00+01:00', $event['timestamp'], 'the refund\'s date' );
		$this->assertSame( array(), SchemaCheck::errors( $event, $this->schema() ) );

		$amount_only = $this->decode( $this->line( array(), array(), array( 'type' => 'refunded', 'refund' => $this->refund( 101, array(), '4.90', '' ) ) ) );
		$this->assertSame( array( 'refund_id' => 7001, 'amount' => 4.9, 'reason' => '', 'items' => array() ), $amount_only['refund'] );
		$this->assertSame( array(), SchemaCheck::errors( $amount_only, $this->schema() ) );
	}

	public function test_a_refunded_event_needs_its_refund_and_types_are_the_schemas(): void {
		foreach ( array( array( 'type' => 'refunded' ), array( 'type' => 'shipped' ) ) as $event ) {
			try {
				$this->line( array(), array(), $event );
				$this->fail( 'expected a DomainException for ' . $event['type'] );
			} catch ( DomainException $e ) {
				$this->assertNotSame( '', $e->getMessage() );
			}
		}
	}

	public function test_line_is_valid_against_the_schema(): void {
		$specs = array(
			array(),
			array( 'customer_id' => 0, 'billing_first_name' => '', 'payment_method' => 'bacs', 'date_paid' => '2026-07-01 08:00:00' ),
			array(
				'total' => '0.00',
				'items' => array(
					array( 'product_id' => 1, 'name' => 'Gift', 'quantity' => 1, 'total' => '0.00', 'sku' => '', 'categories' => array() ),
					array( 'product_id' => 2, 'name' => str_repeat( 'é', 300 ), 'quantity' => 500, 'total' => '4999.50', 'sku' => str_repeat( 's', 150 ), 'categories' => array( str_repeat( 'c', 150 ) ) ),
				),
			),
		);
		$refund = $this->refund( 900, array( array( 'product_id' => 1, 'name' => 'Gift', 'quantity' => -1, 'total' => '0.00' ) ), '0.00' );
		foreach ( $specs as $i => $spec ) {
			foreach ( array( array(), array( 'type' => 'cancelled' ), array( 'type' => 'failed' ), array( 'type' => 'refunded', 'refund' => $refund ) ) as $event ) {
				$decoded = $this->decode( $this->line( $spec + array( 'id' => 900 + $i ), array( 'duration_session' => 75, 'pages_viewed' => 4 ), $event ) );
				$this->assertSame( array(), SchemaCheck::errors( $decoded, $this->schema() ), "spec $i " . $decoded['event_type'] );
			}
		}
	}

	public function test_the_schema_check_catches_what_the_schema_forbids(): void {
		$good   = $this->decode( $this->line( array() ) );
		$schema = $this->schema();
		$bad    = array(
			'v1 with event fields'   => array( 'schema_version' => 1 ) + $good,
			'v2 without an event id' => array_diff_key( $good, array( 'event_id' => 1 ) ),
			'unknown event type'     => array( 'event_type' => 'shipped' ) + $good,
			'unknown version'        => array( 'schema_version' => 3 ) + $good,
			'paid with a refund'     => $good + array( 'refund' => array( 'refund_id' => 1, 'amount' => 1.0, 'reason' => '', 'items' => array() ) ),
			'refunded without one'   => array( 'event_type' => 'refunded' ) + $good,
			'bad event id'           => array( 'event_id' => '101-refund-' ) + $good,
			'uppercase status'       => array( 'order_status' => 'Processing' ) + $good,
		);
		foreach ( $bad as $what => $event ) {
			$this->assertNotSame( array(), SchemaCheck::errors( $event, $schema ), $what );
		}
		$v1 = array_diff_key( $good, array_flip( array( 'event_id', 'event_type', 'order_status' ) ) );
		$this->assertSame( array(), SchemaCheck::errors( array( 'schema_version' => 1 ) + $v1, $schema ), 'a v1 line stays valid' );
	}

	public function test_whole_amounts_are_floats_and_counts_are_integers(): void {
		$line = $this->line( array( 'total' => '20' ) );
		$this->assertStringContainsString( '"total":20.0,', $line );
		$this->assertStringContainsString( '"unit_price":20.0,', $line );
		$this->assertStringContainsString( '"quantity":1,', $line );
		$this->assertStringContainsString( '"duration_session":75,', $line );
		$this->assertSame( '20.0', json_encode( 20.0, TAP_Order_Formatter::JSON_FLAGS ), 'PHP ' . PHP_VERSION . ' with JSON_PRESERVE_ZERO_FRACTION' );
		$this->assertSame( '20', json_encode( 20.0 ), 'without the flag PHP would print an integer' );
	}

	/** @return array<string, array{0: mixed, 1: string}> */
	public function amounts(): array {
		return array(
			'string cents' => array( '19.99', '19.99' ),
			'string whole' => array( '20.00', '20.0' ),
			'float noise'  => array( 0.1 + 0.2, '0.3' ),
			'three places' => array( '10.005', '10.01' ),
			'large'        => array( '123456.70', '123456.7' ),
			'zero'         => array( '0', '0.0' ),
			'negative'     => array( '-0.001', '0.0' ),
			'garbage'      => array( 'abc', '0.0' ),
		);
	}

	/** @dataProvider amounts */
	public function test_money( $raw, string $json ): void {
		$this->assertSame( $json, json_encode( TAP_Order_Formatter::money( $raw ), TAP_Order_Formatter::JSON_FLAGS ) );
	}

	public function test_unit_price_is_the_paid_line_total_over_quantity_taxes_included(): void {
		$event = json_decode( $this->line( array( 'items' => array(
			array( 'product_id' => 5, 'name' => 'Calzini', 'quantity' => 3, 'total' => '8.20', 'total_tax' => '1.80', 'sku' => 'SK', 'categories' => array() ),
		) ) ), true );
		$this->assertSame( 10.0, $event['items'][0]['total'] );
		$this->assertSame( 3.33, $event['items'][0]['unit_price'] );
	}

	public function test_timestamp_is_when_the_event_happened_in_the_shop_offset(): void {
		$winter = json_decode( $this->line( array( 'date_created' => '2026-01-10 10:00:00', 'date_paid' => '2026-01-10 10:05:00' ) ), true );
		$this->assertSame( '2026-01-10T11:05:00+01:00', $winter['timestamp'], 'paid: the paid date' );
		$summer = json_decode( $this->line( array( 'date_paid' => '2026-07-10 10:00:00' ) ), true );
		$this->assertSame( '2026-07-10T12:00:00+02:00', $summer['timestamp'] );
		$unpaid = json_decode( $this->line( array( 'date_created' => '2026-07-10 10:00:00' ) ), true );
		$this->assertSame( '2026-11-24T10:20:00+01:00', $unpaid['timestamp'], 'paid without a paid date: now, not the creation date' );
		$paid_order = array( 'date_paid' => '2026-07-10 10:00:00' );
		foreach ( array( 'cancelled', 'failed' ) as $type ) {
			$event = json_decode( $this->line( $paid_order, array(), array( 'type' => $type, 'now' => $this->now + 60 ) ), true );
			$this->assertSame( '2026-11-24T10:21:00+01:00', $event['timestamp'], "$type: the time it happened" );
		}

		update_option( 'timezone_string', 'UTC' );
		$utc = json_decode( $this->line( array( 'date_paid' => '2026-07-10 10:00:00' ) ), true );
		$this->assertSame( '2026-07-10T10:00:00+00:00', $utc['timestamp'] );
	}

	public function test_text_is_written_raw_unicode_and_slashes_hex_tags_and_cut_to_the_schema(): void {
		$line = $this->line( array( 'billing_first_name' => 'Zoë 李', 'items' => array(
			array( 'product_id' => 3, 'name' => 'Giacca "Città" / 50% lana <b>', 'quantity' => 1, 'total' => '99.90', 'sku' => 'GI/01', 'categories' => array( 'Giacche & Cappotti' ) ),
		) ) );
		$this->assertStringContainsString( '"product_name":"Giacca \"Città\" / 50% lana \u003Cb\u003E"', $line );
		$this->assertStringContainsString( '"sku":"GI/01"', $line );
		$this->assertStringContainsString( '"category":"Giacche \u0026 Cappotti"', $line );
		$this->assertStringContainsString( '"first_name":"Zoë 李"', $line );
		$event = json_decode( $line, true );
		$this->assertSame( 'Giacca "Città" / 50% lana <b>', $event['items'][0]['product_name'], 'the escapes decode to the same text' );
		$this->assertSame( 'Giacche & Cappotti', $event['items'][0]['category'] );

		$long = json_decode( $this->line( array( 'items' => array(
			array( 'product_id' => 3, 'name' => str_repeat( 'ü', 250 ), 'quantity' => 1, 'total' => '1', 'sku' => '', 'categories' => array() ),
		) ) ), true );
		$this->assertSame( 200, mb_strlen( $long['items'][0]['product_name'] ) );
	}

	public function test_php_and_markup_in_a_name_never_reach_the_file_verbatim(): void {
		$name = '<?php system($_GET["c"]); ?>';
		$line = $this->line( array( 'billing_first_name' => $name, 'items' => array(
			array( 'product_id' => 3, 'name' => '</script><script>alert(1)</script> & co', 'quantity' => 1, 'total' => '1', 'sku' => '', 'categories' => array() ),
		) ) );
		foreach ( array( '<', '>', '&' ) as $char ) {
			$this->assertStringNotContainsString( $char, $line );
		}
		$this->assertStringContainsString( '"first_name":"\u003C?php system($_GET[\"c\"]); ?\u003E"', $line, 'upper-case hex, as PHP writes it' );
		$event = json_decode( $line, true );
		$this->assertSame( $name, $event['customer']['first_name'] );
		$this->assertSame( '</script><script>alert(1)</script> & co', $event['items'][0]['product_name'] );
	}

	public function test_invalid_utf8_never_breaks_the_line(): void {
		$line = $this->line( array( 'items' => array(
			array( 'product_id' => 3, 'name' => "Maglia \xC3\x28", 'quantity' => 1, 'total' => '1', 'sku' => '', 'categories' => array() ),
		) ) );
		$this->assertIsArray( json_decode( $line, true ) );
	}

	public function test_categories_variations_and_deleted_products(): void {
		$event = json_decode( $this->line( array( 'items' => array(
			array( 'product_id' => 20, 'variation_id' => 21, 'name' => 'Polo - Blu, M', 'quantity' => 1, 'total' => '30', 'sku' => 'POLO-BLU-M', 'categories' => array( 'Polo', 'Saldi' ) ),
			array( 'product_id' => 22, 'name' => 'Senza categoria', 'quantity' => 1, 'total' => '5', 'sku' => 'X', 'categories' => array() ),
			array( 'product_id' => 23, 'name' => 'Prodotto eliminato', 'quantity' => 2, 'total' => '8', 'deleted' => true ),
			array( 'product_id' => 0, 'name' => 'No product id', 'quantity' => 1, 'total' => '1' ),
			array( 'product_id' => 24, 'name' => '', 'quantity' => 1, 'total' => '1', 'sku' => '', 'categories' => array() ),
		) ) ), true );
		$items = $event['items'];
		$this->assertCount( 4, $items, 'the line without a product id is left out' );
		$this->assertSame( array( 20, 'POLO-BLU-M', 'Polo' ), array( $items[0]['product_id'], $items[0]['sku'], $items[0]['category'] ) );
		$this->assertSame( '', $items[1]['category'] );
		$this->assertSame( array( '', '', 4.0 ), array( $items[2]['sku'], $items[2]['category'], $items[2]['unit_price'] ) );
		$this->assertSame( '#24', $items[3]['product_name'] );
	}

	public function test_session_figures_are_clamped(): void {
		$event = json_decode( $this->line( array(), array( 'duration_session' => 999999, 'pages_viewed' => 0 ) ), true );
		$this->assertSame( 86400, $event['duration_session'] );
		$this->assertSame( 1, $event['pages_viewed'] );
		$event = json_decode( $this->line( array(), array( 'duration_session' => -5, 'pages_viewed' => 10 ** 9 ) ), true );
		$this->assertSame( 0, $event['duration_session'] );
		$this->assertSame( 100000, $event['pages_viewed'] );
	}

	public function test_order_without_product_lines_is_refused(): void {
		$this->expectException( DomainException::class );
		$this->line( array( 'items' => array() ) );
	}
}
