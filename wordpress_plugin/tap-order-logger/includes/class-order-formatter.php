<?php
/**
 * Turns a WooCommerce order into one line of contracts/order.schema.json.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * Builds the event array in the schema's key order (the order of its "required" arrays) and
 * encodes it to the same bytes as the Python simulator's `format_line()`
 * (`json.dumps(event, ensure_ascii=False, separators=(",", ":"))` with `<`, `>` and `&`
 * replaced by `\u003C`, `\u003E` and `\u0026`, plus "\n"):
 *
 * - JSON_UNESCAPED_UNICODE and JSON_UNESCAPED_SLASHES: "Müller" and "a/b" stay as they are;
 * - JSON_HEX_TAG and JSON_HEX_AMP: `<`, `>` and `&` are written as \u003C, \u003E and \u0026
 *   (upper-case hex, as PHP writes them), so no line can carry `<?php` or markup verbatim into
 *   whatever file or page ends up holding it; they decode to the same text;
 * - JSON_PRESERVE_ZERO_FRACTION: a whole float prints as 20.0, as Python does (PHP prints 20
 *   without it);
 * - JSON_INVALID_UTF8_SUBSTITUTE: broken UTF-8 in a product name cannot make the line fail.
 *
 * Known differences from Python, outside what the shop produces: PHP escapes U+2028/U+2029
 * (Python writes them raw) and prints floats of 1e16 and more in positional notation (Python:
 * 1e+16). Both decode to the same values.
 */
final class TAP_Order_Formatter {

	const SCHEMA_VERSION = 1;
	const JSON_FLAGS     = JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_HEX_TAG | JSON_HEX_AMP | JSON_PRESERVE_ZERO_FRACTION | JSON_INVALID_UTF8_SUBSTITUTE;
	const TIME_FORMAT    = 'Y-m-d\TH:i:sP';

	/**
	 * The line for an order, newline included.
	 *
	 * @param WC_Order     $order    Order.
	 * @param array        $session  duration_session and pages_viewed.
	 * @param DateTimeZone $timezone The shop's time zone (wp_timezone()).
	 * @return string
	 */
	public static function line( $order, array $session, DateTimeZone $timezone ) {
		return self::encode( self::event( $order, $session, $timezone ) );
	}

	/**
	 * The event as an ordered array.
	 *
	 * @param WC_Order     $order    Order.
	 * @param array        $session  duration_session and pages_viewed.
	 * @param DateTimeZone $timezone The shop's time zone.
	 * @return array
	 * @throws DomainException When the order has no product line to report.
	 */
	public static function event( $order, array $session, DateTimeZone $timezone ) {
		$items = array();
		foreach ( $order->get_items( 'line_item' ) as $item ) {
			$line = self::item( $item );
			if ( null !== $line ) {
				$items[] = $line;
			}
		}
		if ( empty( $items ) ) {
			throw new DomainException( sprintf( 'Order %d has no product lines to log.', $order->get_id() ) );
		}

		return array(
			'schema_version'   => self::SCHEMA_VERSION,
			'order_id'         => (int) $order->get_id(),
			'timestamp'        => self::timestamp( $order, $timezone ),
			'currency'         => strtoupper( (string) $order->get_currency() ),
			'total'            => self::money( $order->get_total() ),
			'payment_method'   => self::text( $order->get_payment_method(), 64 ),
			'items'            => $items,
			'customer'         => array(
				'id'         => max( 0, (int) $order->get_customer_id() ),
				'first_name' => self::text( $order->get_billing_first_name(), 100 ),
				'email'      => self::text( $order->get_billing_email(), 254 ),
			),
			'duration_session' => self::bounded( $session, 'duration_session', 0, TAP_Session_Tracker::MAX_SECONDS ),
			'pages_viewed'     => self::bounded( $session, 'pages_viewed', 1, TAP_Session_Tracker::MAX_PAGES ),
		);
	}

	/**
	 * JSON line, newline included.
	 *
	 * @param array $event Event.
	 * @return string
	 * @throws RuntimeException When encoding fails.
	 */
	public static function encode( array $event ) {
		$json = wp_json_encode( $event, self::JSON_FLAGS );
		if ( ! is_string( $json ) ) {
			throw new RuntimeException( 'Could not encode the order event as JSON.' );
		}
		return $json . "\n";
	}

	/**
	 * One product line, or null for lines the schema cannot describe (no product id, e.g. a
	 * deleted product; no quantity).
	 *
	 * @param mixed $item Order item.
	 * @return array|null
	 */
	private static function item( $item ) {
		if ( ! $item instanceof WC_Order_Item_Product ) {
			return null;
		}
		$product_id = (int) $item->get_product_id();
		$quantity   = (int) $item->get_quantity();
		if ( $product_id < 1 || $quantity < 1 ) {
			return null;
		}
		// What the customer paid for the line: after discounts, taxes included.
		$total   = self::money( (float) $item->get_total() + (float) $item->get_total_tax() );
		$product = $item->get_product();
		$name    = self::text( $item->get_name(), 200 );

		return array(
			'product_id'   => $product_id,
			'product_name' => '' !== $name ? $name : '#' . $product_id,
			'sku'          => self::text( $product ? $product->get_sku() : '', 100 ),
			'category'     => self::text( self::primary_category( $product ), 100 ),
			'quantity'     => $quantity,
			'unit_price'   => self::money( $total / $quantity ),
			'total'        => $total,
		);
	}

	/**
	 * The name of the product's first product_cat term ('' when none); variations use their
	 * parent's categories.
	 *
	 * @param WC_Product|false|null $product Product.
	 * @return string
	 */
	public static function primary_category( $product ) {
		if ( ! $product ) {
			return '';
		}
		$parent_id = (int) $product->get_parent_id();
		if ( $parent_id > 0 && function_exists( 'wc_get_product' ) ) {
			$parent = wc_get_product( $parent_id );
			if ( $parent ) {
				$product = $parent;
			}
		}
		foreach ( (array) $product->get_category_ids() as $term_id ) {
			$term = get_term( (int) $term_id, 'product_cat' );
			if ( $term && ! is_wp_error( $term ) && isset( $term->name ) ) {
				// Term names are stored HTML-escaped ("Shirts &amp; Tops").
				return html_entity_decode( (string) $term->name, ENT_QUOTES | ENT_HTML5, 'UTF-8' );
			}
		}
		return '';
	}

	/**
	 * When the order was paid (or placed, for orders awaiting payment), in the shop's time zone.
	 *
	 * @param WC_Order     $order    Order.
	 * @param DateTimeZone $timezone Time zone.
	 * @return string e.g. 2026-11-24T10:15:03+01:00
	 */
	public static function timestamp( $order, DateTimeZone $timezone ) {
		$date = $order->get_date_paid();
		if ( ! $date ) {
			$date = $order->get_date_created();
		}
		$unix = $date ? $date->getTimestamp() : time();
		$when = new DateTimeImmutable( '@' . $unix );
		return $when->setTimezone( $timezone )->format( self::TIME_FORMAT );
	}

	/**
	 * A money amount as a float rounded to cents, never negative (WooCommerce returns amounts
	 * as strings such as "20.00").
	 *
	 * @param mixed $value Amount.
	 * @return float
	 */
	public static function money( $value ) {
		$amount = round( (float) $value, 2 );
		return $amount > 0 ? $amount : 0.0;
	}

	/**
	 * A string cut to the schema's maximum length in characters.
	 *
	 * @param mixed $value Value.
	 * @param int   $max   Maximum characters.
	 * @return string
	 */
	public static function text( $value, $max ) {
		$text = is_scalar( $value ) ? (string) $value : '';
		if ( function_exists( 'mb_strlen' ) && mb_strlen( $text, 'UTF-8' ) > $max ) {
			return mb_substr( $text, 0, $max, 'UTF-8' );
		}
		return $text;
	}

	/**
	 * An integer from the session figures, clamped.
	 *
	 * @param array  $session Figures.
	 * @param string $key     Key.
	 * @param int    $min     Minimum.
	 * @param int    $max     Maximum.
	 * @return int
	 */
	private static function bounded( array $session, $key, $min, $max ) {
		$value = isset( $session[ $key ] ) && is_numeric( $session[ $key ] ) ? (int) $session[ $key ] : $min;
		return max( $min, min( $max, $value ) );
	}
}
