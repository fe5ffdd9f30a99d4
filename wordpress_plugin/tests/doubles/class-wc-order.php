<?php
/**
 * Doubles of WC_Order and WC_Order_Refund, and wc_create_refund().
 *
 * WC_Order has WooCommerce's status machinery: set_status() + save() fire
 * `woocommerce_order_status_{to}` and `woocommerce_order_status_changed` after saving (as
 * WC_Order::status_transition() does); a change into processing or completed sets the paid date
 * when there is none (WC_Order::maybe_set_date_paid()); payment_complete() sets the paid date,
 * moves a pending/on-hold/failed/cancelled order to processing and then fires
 * `woocommerce_payment_complete`. Amounts are decimal strings, as WooCommerce returns them.
 * "Now" is tap_test_time(): the tests' clock.
 *
 * @package TAP_Order_Logger\Tests
 */

abstract class WC_Abstract_Order extends WC_Data {}

class WC_Order extends WC_Abstract_Order {

	/** @var array */
	protected $props;

	/** @var WC_Order_Item_Product[] */
	protected $items = array();

	/** @var array|null from/to of an unsaved status change */
	protected $status_transition = null;

	/** @var string[] order notes (WooCommerce stores them as comments, at once, without save()) */
	public $notes = array();

	/**
	 * @param array $props Order fields (see defaults) and 'items' => list of item props.
	 */
	public function __construct( array $props = array() ) {
		$defaults    = array(
			'id'                 => 0,
			'status'             => 'pending',
			'currency'           => 'EUR',
			'total'              => '0.00',
			'payment_method'     => 'cod',
			'customer_id'        => 0,
			'billing_first_name' => '',
			'billing_email'      => '',
			'date_created'       => null,
			'date_paid'          => null,
		);
		$items       = $props['items'] ?? array();
		unset( $props['items'] );
		$this->props = array_merge( $defaults, $props );
		$this->id    = (int) $this->props['id'];
		foreach ( array( 'date_created', 'date_paid' ) as $date ) {
			if ( is_string( $this->props[ $date ] ) ) {
				$this->props[ $date ] = WC_DateTime::from_utc( $this->props[ $date ] );
			}
		}
		$next = 1;
		foreach ( $items as $item ) {
			$item                 = $item instanceof WC_Order_Item_Product ? $item : new WC_Order_Item_Product( $item + array( 'id' => $this->id * 100 + $next ) );
			$this->items[ $item->get_id() ] = $item;
			++$next;
		}
	}

	public function get_status( $context = 'view' ) { return (string) $this->props['status']; }
	public function get_currency( $context = 'view' ) { return (string) $this->props['currency']; }
	public function get_total( $context = 'view' ) { return (string) $this->props['total']; }
	public function get_payment_method( $context = 'view' ) { return (string) $this->props['payment_method']; }
	public function get_customer_id( $context = 'view' ) { return (int) $this->props['customer_id']; }
	public function get_billing_first_name( $context = 'view' ) { return (string) $this->props['billing_first_name']; }
	public function get_billing_email( $context = 'view' ) { return (string) $this->props['billing_email']; }

	/** @return WC_DateTime|null */
	public function get_date_created( $context = 'view' ) { return $this->props['date_created']; }

	/** @return WC_DateTime|null */
	public function get_date_paid( $context = 'view' ) { return $this->props['date_paid']; }

	/**
	 * @param string|string[] $types Item types.
	 * @return WC_Order_Item[]
	 */
	public function get_items( $types = 'line_item' ) {
		return in_array( 'line_item', (array) $types, true ) ? $this->items : array();
	}

	/** @return WC_Order_Refund[] the order's refunds, newest first, as WooCommerce lists them */
	public function get_refunds() {
		$refunds = array();
		foreach ( TAP_Test_Store::$refunds as $refund ) {
			if ( $refund->get_parent_id() === $this->get_id() ) {
				$refunds[] = clone $refund;
			}
		}
		return array_reverse( $refunds );
	}

	/** @return float */
	public function get_total_refunded() {
		$sum = 0.0;
		foreach ( $this->get_refunds() as $refund ) {
			$sum += (float) $refund->get_amount();
		}
		return $sum;
	}

	/** @return string */
	public function get_remaining_refund_amount() {
		return number_format( (float) $this->get_total() - $this->get_total_refunded(), 2, '.', '' );
	}

	public function has_status( $status ) {
		return in_array( $this->get_status(), (array) $status, true );
	}

	public function set_date_paid( $date ) {
		$this->props['date_paid'] = $date;
	}

	/** @return array from/to */
	public function set_status( $new_status, $note = '', $manual = false ) {
		$new_status = 0 === strpos( $new_status, 'wc-' ) ? substr( $new_status, 3 ) : $new_status;
		$old        = $this->get_status();
		if ( $old !== $new_status ) {
			$this->status_transition = array( 'from' => $this->status_transition['from'] ?? $old, 'to' => $new_status );
			if ( ! $this->get_date_paid() && in_array( $new_status, array( 'processing', 'completed' ), true ) ) {
				$this->set_date_paid( new WC_DateTime( '@' . tap_test_time() ) ); // maybe_set_date_paid()
			}
		}
		$this->props['status'] = $new_status;
		return array( 'from' => $old, 'to' => $new_status );
	}

	/** Sets the status and saves, like WC_Order::update_status(). */
	public function update_status( $new_status, $note = '', $manual = false ) {
		$this->set_status( $new_status, $note, $manual );
		$this->save();
		return true;
	}

	/** Like WC_Order::payment_complete(). */
	public function payment_complete( $transaction_id = '' ) {
		if ( ! $this->has_status( array( 'on-hold', 'pending', 'failed', 'cancelled' ) ) ) {
			return false;
		}
		if ( ! $this->get_date_paid() ) {
			$this->set_date_paid( new WC_DateTime( '@' . tap_test_time() ) );
		}
		$this->set_status( 'processing' );
		$this->save();
		do_action( 'woocommerce_payment_complete', $this->get_id(), $transaction_id );
		return true;
	}

	/** Like WC_Order::add_order_note(): stored at once, returns the note's id. */
	public function add_order_note( $note, $is_customer_note = 0, $added_by_user = false ) {
		if ( ! $this->get_id() ) {
			return 0;
		}
		TAP_Test_Store::$notes[ $this->get_id() ][] = (string) $note;
		$this->notes[]                             = (string) $note;
		return count( TAP_Test_Store::$notes[ $this->get_id() ] );
	}

	/** Persists to the test store, then runs the status transition hooks. */
	public function save() {
		$transition              = $this->status_transition;
		$this->status_transition = null;
		TAP_Test_Store::persist( $this );
		if ( $transition ) {
			do_action( 'woocommerce_order_status_' . $transition['to'], $this->get_id(), $this, $transition );
			do_action( 'woocommerce_order_status_changed', $this->get_id(), $transition['from'], $transition['to'], $this, $transition );
		}
		return $this->get_id();
	}
}

/**
 * A refund as wc_create_refund() stores it: its own id, the order as parent, a positive amount
 * (get_amount()), a reason, its creation date, and copies of the refunded order lines with
 * negative quantity, total and tax.
 */
class WC_Order_Refund extends WC_Abstract_Order {

	/** @var array */
	protected $props;

	/** @var WC_Order_Item_Product[] */
	protected $items = array();

	/**
	 * @param array $props id, parent_id, amount, reason, date_created (WC_DateTime or UTC
	 *                     "Y-m-d H:i:s"), items (WC_Order_Item_Product).
	 */
	public function __construct( array $props = array() ) {
		$this->props = array_merge( array( 'id' => 0, 'parent_id' => 0, 'amount' => '0.00', 'reason' => '', 'date_created' => null ), $props );
		$this->id    = (int) $this->props['id'];
		if ( is_string( $this->props['date_created'] ) ) {
			$this->props['date_created'] = WC_DateTime::from_utc( $this->props['date_created'] );
		}
		foreach ( $props['items'] ?? array() as $item ) {
			$this->items[ $item->get_id() ] = $item;
		}
	}

	public function get_parent_id( $context = 'view' ) { return (int) $this->props['parent_id']; }
	public function get_amount( $context = 'view' ) { return (string) $this->props['amount']; }
	public function get_reason( $context = 'view' ) { return (string) $this->props['reason']; }
	public function get_status( $context = 'view' ) { return 'completed'; }

	/** @return WC_DateTime|null */
	public function get_date_created( $context = 'view' ) { return $this->props['date_created']; }

	/** @return WC_Order_Item[] */
	public function get_items( $types = 'line_item' ) {
		return in_array( 'line_item', (array) $types, true ) ? $this->items : array();
	}

	public function save() {
		if ( ! $this->id ) {
			$this->id = TAP_Test_Store::next_refund_id();
		}
		TAP_Test_Store::$refunds[ $this->id ] = clone $this;
		return $this->id;
	}
}

/**
 * wc_create_refund() as WooCommerce 10 runs it (includes/wc-order-functions.php): checks the
 * amount against what is left to refund, copies the refunded lines (`line_items`: item id =>
 * qty, refund_total, refund_tax) with negative quantity and totals, saves the refund, moves a
 * fully refunded order to refunded (status hooks), saves the order, then fires
 * `woocommerce_refund_created( $refund_id, $args )` and
 * `woocommerce_order_refunded( $order_id, $refund_id )`. `date_created` (UTC "Y-m-d H:i:s")
 * defaults to tap_test_time().
 *
 * @return WC_Order_Refund|WP_Error
 */
function wc_create_refund( $args = array() ) {
	$args  = array_merge( array( 'amount' => 0, 'reason' => null, 'order_id' => 0, 'line_items' => array(), 'date_created' => null ), $args );
	$order = wc_get_order( $args['order_id'] );
	if ( ! $order ) {
		return new WP_Error( 'error', 'Invalid order ID.' );
	}
	$remaining = (float) $order->get_remaining_refund_amount();
	if ( 0 > $args['amount'] || (float) $args['amount'] > $remaining + 1e-9 ) {
		return new WP_Error( 'error', 'Invalid refund amount.' );
	}
	$items = array();
	foreach ( $order->get_items( 'line_item' ) as $item_id => $item ) {
		if ( ! isset( $args['line_items'][ $item_id ] ) ) {
			continue;
		}
		$line = $args['line_items'][ $item_id ];
		$qty  = $line['qty'] ?? 0;
		$tax  = array_sum( array_map( 'floatval', (array) ( $line['refund_tax'] ?? array() ) ) );
		if ( empty( $qty ) && empty( $line['refund_total'] ) && empty( $line['refund_tax'] ) ) {
			continue;
		}
		$items[] = new WC_Order_Item_Product(
			array(
				'id'           => 90000 + count( TAP_Test_Store::$refunds ) * 100 + count( $items ) + 1,
				'product_id'   => $item->get_product_id(),
				'variation_id' => $item->get_variation_id(),
				'name'         => $item->get_name(),
				'quantity'     => -1 * (int) $qty,
				'total'        => number_format( -1 * (float) ( $line['refund_total'] ?? 0 ), 2, '.', '' ),
				'total_tax'    => number_format( -1 * $tax, 2, '.', '' ),
			)
		);
	}
	$refund = new WC_Order_Refund(
		array(
			'parent_id'    => $order->get_id(),
			'amount'       => number_format( (float) $args['amount'], 2, '.', '' ),
			'reason'       => (string) $args['reason'],
			'date_created' => $args['date_created'] ?? new WC_DateTime( '@' . tap_test_time() ),
			'items'        => $items,
		)
	);
	$refund->save();
	if ( $remaining - (float) $args['amount'] <= 0 ) {
		$order->set_status( 'refunded' );
	}
	$order->save();
	do_action( 'woocommerce_refund_created', $refund->get_id(), $args );
	do_action( 'woocommerce_order_refunded', $order->get_id(), $refund->get_id() );
	return $refund;
}

/**
 * WooCommerce's wc_order_fully_refunded(), hooked on `woocommerce_order_status_refunded`: an
 * admin who sets the status to refunded gets a refund for what is left. Tests hook it in.
 */
function tap_test_wc_order_fully_refunded( $order_id ) {
	$order = wc_get_order( $order_id );
	$left  = (float) $order->get_total() - $order->get_total_refunded();
	if ( $left <= 0 ) {
		return;
	}
	wc_create_refund( array( 'amount' => $left, 'reason' => 'Order fully refunded.', 'order_id' => $order_id ) );
}
