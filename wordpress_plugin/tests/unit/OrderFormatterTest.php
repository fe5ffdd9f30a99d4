<?php
/**
 * The line: the schema's keys in the schema's order, its types, and Python's bytes.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require_once __DIR__ . '/TapTestCase.php';
require_once __DIR__ . '/SchemaCheck.php';

final class OrderFormatterTest extends TapTestCase {

	private function line( array $spec, array $session = array( 'duration_session' => 75, 'pages_viewed' => 4 ) ) {
		return TAP_Order_Formatter::line( tap_test_make_order( $spec ), $session, wp_timezone() );
	}

	public function test_exact_bytes_of_a_line(): void {
		$line = $this->line(
			array(
				'id'                 => 1042,
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
		$expected = '{"schema_version":1,"order_id":1042,"timestamp":"2026-11-24T10:15:03+01:00","currency":"EUR",'
			. '"total":60.0,"payment_method":"cod","items":[{"product_id":11,"product_name":"T-Shirt 100% cotone / bio",'
			. '"sku":"TS-1","category":"Magliette \\u0026 Top","quantity":3,"unit_price":20.0,"total":60.0}],'
			. '"customer":{"id":7,"first_name":"Lorenzo Müller","email":"lorenzo@example.com"},'
			. '"duration_session":75,"pages_viewed":4}' . "\n";
		$this->assertSame( $expected, $line );
	}

	public function test_key_order_is_the_schema_required_order(): void {
		$schema = $this->schema();
		$event  = json_decode( $this->line( array() ), true );
		$this->assertSame( $schema['required'], array_keys( $event ) );
		$this->assertSame( $schema['properties']['items']['items']['required'], array_keys( $event['items'][0] ) );
		$this->assertSame( $schema['properties']['customer']['required'], array_keys( $event['customer'] ) );
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
		foreach ( $specs as $i => $spec ) {
			$event = json_decode( $this->line( $spec + array( 'id' => 900 + $i ) ), false );
			$event = json_decode( json_encode( $event ), true ); // objects to arrays, floats stay floats
			$this->assertSame( array(), SchemaCheck::errors( $event, $this->schema() ), "spec $i" );
		}
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

	public function test_timestamp_uses_the_shop_offset_and_prefers_the_paid_date(): void {
		$winter = json_decode( $this->line( array( 'date_created' => '2026-01-10 10:00:00', 'date_paid' => '2026-01-10 10:05:00' ) ), true );
		$this->assertSame( '2026-01-10T11:05:00+01:00', $winter['timestamp'] );
		$summer = json_decode( $this->line( array( 'date_created' => '2026-07-10 10:00:00' ) ), true );
		$this->assertSame( '2026-07-10T12:00:00+02:00', $summer['timestamp'] );

		update_option( 'timezone_string', 'UTC' );
		$utc = json_decode( $this->line( array( 'date_created' => '2026-07-10 10:00:00' ) ), true );
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
