<?php
/**
 * Turns an event in a WooCommerce order's life into one line of contracts/order.schema.json.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * Builds the event array in the schema's key order (the order of its "properties"; `refund`
 * last and only on refunded events) and encodes it to the same bytes as the Python
 * simulator's `format_line()` (`json.dumps(event, ensure_ascii=False, separators=(",", ":"))`
 * with `<`, `>` and `&` replaced by `\u003C`, `\u003E` and `\u0026`, plus "\n"):
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

	const SCHEMA_VERSION = 2;
	const JSON_FLAGS     = JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_HEX_TAG | JSON_HEX_AMP | JSON_PRESERVE_ZERO_FRACTION | JSON_INVALID_UTF8_SUBSTITUTE;
	const TIME_FORMAT    = 'Y-m-d\TH:i:sP';

	/** The schema's event types. */
	const PAID        = 'paid';
	const REFUNDED    = 'refunded';
	const CANCELLED   = 'cancelled';
	const FAILED      = 'failed';
	const EVENT_TYPES = array( self::PAID, self::REFUNDED, self::CANCELLED, self::FAILED );

	/**
	 * The line for an event of an order, newline included.
	 *
	 * @param WC_Order     $order    Order, as it stands after the event.
	 * @param array        $session  duration_session and pages_viewed.
	 * @param DateTimeZone $timezone The shop's time zone (wp_timezone()).
	 * @param array        $event    See event().
	 * @return string
	 */
	public static function line( $order, array $session, DateTimeZone $timezone, array $event = array() ) {
		return self::encode( self::event( $order, $session, $timezone, $event ) );
	}

	/**
	 * The event as an ordered array. Every event carries the whole order as it stands (items,
	 * customer, total, visit figures), so downstream each line can be judged alone.
	 *
	 * @param WC_Order     $order    Order.
	 * @param array        $session  duration_session and pages_viewed.
	 * @param DateTimeZone $timezone The shop's time zone.
	 * @param array        $event    'type' (one of EVENT_TYPES; default paid), 'refund' (the
	 *                               WC_Order_Refund of a refunded event), 'now' (Unix time of a
	 *                               cancelled or failed event, and of a paid event without a paid
	 *                               date; default time()).
	 * @return array
	 * @throws DomainException When the order has no product line, or the event is not one the
	 *                         schema describes.
	 */
	public static function event( $order, array $session, DateTimeZone $timezone, array $event = array() ) {
		$type   = isset( $event['type'] ) ? (string) $event['type'] : self::PAID;
		$refund = $event['refund'] ?? null;
		$now    = isset( $event['now'] ) && is_numeric( $event['now'] ) && (int) $event['now'] > 0 ? (int) $event['now'] : time();
		if ( ! in_array( $type, self::EVENT_TYPES, true ) ) {
			throw new DomainException( sprintf( 'Unknown order event type "%s".', $type ) );
		}
		if ( self::REFUNDED === $type && ! ( $refund instanceof WC_Order_Refund && (int) $refund->get_id() > 0 ) ) {
			throw new DomainException( sprintf( 'A refunded event of order %d needs its refund.', $order->get_id() ) );
		}

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

		$order_id = (int) $order->get_id();
		$line     = array(
			'schema_version'   => self::SCHEMA_VERSION,
			'event_id'         => self::event_id( $order_id, $type, self::REFUNDED === $type ? (int) $refund->get_id() : 0 ),
			'event_type'       => $type,
			'order_id'         => $order_id,
			'order_status'     => self::status( $order->get_status() ),
			'timestamp'        => self::format_time( self::event_time( $order, $type, $refund, $now ), $timezone ),
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
		if ( self::REFUNDED === $type ) {
			$line['refund'] = self::refund( $refund );
		}
		return $line;
	}

	/**
	 * The event's id, the same on every write of the event: <order>-paid, <order>-cancelled,
	 * <order>-failed, <order>-refund-<refund>. The ledger downstream derives its document ids
	 * from it, so a line written twice, or replayed, counts once.
	 *
	 * @param int    $order_id  Order id.
	 * @param string $type      Event type.
	 * @param int    $refund_id Refund id (refunded events).
	 * @return string
	 */
	public static function event_id( $order_id, $type, $refund_id = 0 ) {
		return self::REFUNDED === $type
			? sprintf( '%d-refund-%d', (int) $order_id, (int) $refund_id )
			: sprintf( '%d-%s', (int) $order_id, $type );
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
		$quantity = (int) $item->get_quantity();
		if ( (int) $item->get_product_id() < 1 || $quantity < 1 ) {
			return null;
		}
		// What the customer paid for the line: after discounts, taxes included.
		$total = self::money( (float) $item->get_total() + (float) $item->get_total_tax() );

		return self::product( $item ) + array(
			'quantity'   => $quantity,
			'unit_price' => self::money( $total / $quantity ),
			'total'      => $total,
		);
	}

	/**
	 * The refund object of a refunded event.
	 *
	 * @param WC_Order_Refund $refund Refund.
	 * @return array
	 */
	private static function refund( $refund ) {
		$items = array();
		foreach ( $refund->get_items( 'line_item' ) as $item ) {
			$line = self::refund_item( $item );
			if ( null !== $line ) {
				$items[] = $line;
			}
		}
		return array(
			'refund_id' => (int) $refund->get_id(),
			'amount'    => self::money( abs( (float) $refund->get_amount() ) ),
			'reason'    => self::text( $refund->get_reason(), 200 ),
			'items'     => $items,
		);
	}

	/**
	 * One refunded product line, or null. wc_create_refund() stores a refund's lines as copies
	 * of the order's lines with negative quantity and totals: they are written positive. A line
	 * without units given back (an amount-only refund on a line, or nothing at all) is left out:
	 * the schema's refunded lines count units, and its money is in the refund's amount.
	 *
	 * @param mixed $item Refund item.
	 * @return array|null
	 */
	private static function refund_item( $item ) {
		if ( ! $item instanceof WC_Order_Item_Product ) {
			return null;
		}
		$quantity = abs( (int) $item->get_quantity() );
		if ( (int) $item->get_product_id() < 1 || $quantity < 1 ) {
			return null;
		}
		return self::product( $item ) + array(
			'quantity' => $quantity,
			'amount'   => self::money( abs( (float) $item->get_total() + (float) $item->get_total_tax() ) ),
		);
	}

	/**
	 * The product fields of an order or refund line, in the schema's order.
	 *
	 * @param WC_Order_Item_Product $item Line.
	 * @return array
	 */
	private static function product( $item ) {
		$product_id = (int) $item->get_product_id();
		$product    = $item->get_product();
		$name       = self::text( $item->get_name(), 200 );
		return array(
			'product_id'   => $product_id,
			'product_name' => '' !== $name ? $name : '#' . $product_id,
			'sku'          => self::text( $product ? $product->get_sku() : '', 100 ),
			'category'     => self::text( self::primary_category( $product ), 100 ),
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
	 * When the event happened, as Unix time: the payment date of a paid event (when the shop
	 * has none yet, $now), the refund's creation date, $now for a cancellation or failure
	 * (WooCommerce records no date for those).
	 *
	 * @param WC_Order             $order  Order.
	 * @param string               $type   Event type.
	 * @param WC_Order_Refund|null $refund Refund of a refunded event.
	 * @param int                  $now    Unix time of the event when WooCommerce has no date.
	 * @return int
	 */
	private static function event_time( $order, $type, $refund, $now ) {
		$date = null;
		if ( self::PAID === $type ) {
			$date = $order->get_date_paid();
		} elseif ( self::REFUNDED === $type ) {
			$date = $refund->get_date_created();
		}
		return $date ? (int) $date->getTimestamp() : (int) $now;
	}

	/**
	 * A Unix time in the shop's time zone.
	 *
	 * @param int          $unix     Unix time.
	 * @param DateTimeZone $timezone Time zone.
	 * @return string e.g. 2026-11-24T10:15:03+01:00
	 */
	public static function format_time( $unix, DateTimeZone $timezone ) {
		$when = new DateTimeImmutable( '@' . (int) $unix );
		return $when->setTimezone( $timezone )->format( self::TIME_FORMAT );
	}

	/**
	 * WooCommerce's status slug without "wc-", within the schema's pattern (a shop's own
	 * status could be spelled otherwise).
	 *
	 * @param mixed $status Status.
	 * @return string
	 */
	public static function status( $status ) {
		$status = strtolower( is_scalar( $status ) ? (string) $status : '' );
		$status = 0 === strpos( $status, 'wc-' ) ? substr( $status, 3 ) : $status;
		$status = substr( (string) preg_replace( '/[^a-z0-9_-]/', '', $status ), 0, 20 );
		return '' !== $status ? $status : 'unknown';
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
