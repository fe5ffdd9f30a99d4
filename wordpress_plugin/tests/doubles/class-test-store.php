<?php
/**
 * The "database" behind wc_get_order() / wc_get_product(), and the WooCommerce logger double.
 *
 * wc_get_order() returns a new copy of the saved order on every call, as WooCommerce builds a
 * new object per call: a handler that saves meta on one copy is seen by the next handler only
 * through the store, which is what the plugin's once-only guard relies on.
 *
 * @package TAP_Order_Logger\Tests
 */

class TAP_Test_Store {

	/** @var array<int, WC_Order> saved orders */
	public static $orders = array();

	/** @var array<int, WC_Order_Refund> saved refunds */
	public static $refunds = array();

	/** @var array<int, WC_Product> */
	public static $products = array();

	/** @var int */
	public static $saves = 0;

	/** @var array<int, string[]> order notes by order id */
	public static $notes = array();

	public static function reset() {
		self::$orders   = array();
		self::$refunds  = array();
		self::$products = array();
		self::$saves    = 0;
		self::$notes    = array();
	}

	public static function persist( WC_Order $order ) {
		++self::$saves;
		self::$orders[ $order->get_id() ] = clone $order;
	}

	/** Refunds share the orders' id sequence in WooCommerce: a number no order or refund has. */
	public static function next_refund_id() {
		return max( array_merge( array( 5000 ), array_keys( self::$orders ), array_keys( self::$refunds ) ) ) + 1;
	}
}

/** The tests' "now" (TapTestCase's clock), else the real time. */
function tap_test_time() {
	return isset( $GLOBALS['tap_test_clock'] ) && is_callable( $GLOBALS['tap_test_clock'] ) ? (int) call_user_func( $GLOBALS['tap_test_clock'] ) : time();
}

/** An order, or a refund (WooCommerce returns a WC_Order_Refund for a refund's id). */
function wc_get_order( $order_id = false ) {
	$order_id = is_object( $order_id ) ? $order_id->get_id() : (int) $order_id;
	if ( isset( TAP_Test_Store::$orders[ $order_id ] ) ) {
		return clone TAP_Test_Store::$orders[ $order_id ];
	}
	return isset( TAP_Test_Store::$refunds[ $order_id ] ) ? clone TAP_Test_Store::$refunds[ $order_id ] : false;
}

/**
 * wc_get_orders() for the arguments the plugin passes: `customer` (e-mail addresses, matched to
 * the billing e-mail, or user ids, matched to the customer id), `limit` and `page`; orders by id.
 */
function wc_get_orders( $args ) {
	$customers = isset( $args['customer'] ) ? (array) $args['customer'] : null;
	$found     = array();
	$ids       = array_keys( TAP_Test_Store::$orders );
	sort( $ids );
	foreach ( $ids as $id ) {
		$order = TAP_Test_Store::$orders[ $id ];
		if ( null !== $customers ) {
			$match = false;
			foreach ( $customers as $customer ) {
				$match = $match || ( is_int( $customer ) ? $customer > 0 && $customer === $order->get_customer_id() : 0 === strcasecmp( (string) $customer, $order->get_billing_email() ) );
			}
			if ( ! $match ) {
				continue;
			}
		}
		$found[] = $id;
	}
	$limit = isset( $args['limit'] ) ? (int) $args['limit'] : 10;
	$page  = max( 1, (int) ( $args['page'] ?? 1 ) );
	if ( $limit > 0 ) {
		$found = array_slice( $found, ( $page - 1 ) * $limit, $limit );
	}
	return array_map( 'wc_get_order', $found );
}

function wc_get_product( $product_id = false ) {
	return TAP_Test_Store::$products[ (int) $product_id ] ?? false;
}

/** Records what the plugin reports through wc_get_logger(). */
class TAP_Test_Logger {

	/** @var array<int, array{level: string, message: string, context: array}> */
	public $entries = array();

	public function error( $message, $context = array() ) {
		$this->entries[] = array( 'level' => 'error', 'message' => $message, 'context' => $context );
	}

	public function warning( $message, $context = array() ) {
		$this->entries[] = array( 'level' => 'warning', 'message' => $message, 'context' => $context );
	}

	public function messages( $level = null ) {
		$out = array();
		foreach ( $this->entries as $entry ) {
			if ( null === $level || $entry['level'] === $level ) {
				$out[] = $entry['message'];
			}
		}
		return $out;
	}
}

$GLOBALS['tap_wc_logger'] = new TAP_Test_Logger();

function wc_get_logger() {
	return $GLOBALS['tap_wc_logger'];
}
