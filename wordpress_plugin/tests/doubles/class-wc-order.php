<?php
/**
 * Double of WC_Order with WooCommerce's status machinery: set_status() + save() fire
 * `woocommerce_order_status_{to}` and `woocommerce_order_status_changed` after saving (as
 * WC_Order::status_transition() does), and payment_complete() sets the paid date, moves a
 * pending/on-hold/failed/cancelled order to processing and then fires
 * `woocommerce_payment_complete`. Amounts are decimal strings, as WooCommerce returns them.
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
			$this->set_date_paid( new WC_DateTime( '@' . time() ) );
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

class WC_Order_Refund extends WC_Abstract_Order {
	public function save() {
		return $this->id;
	}
}
