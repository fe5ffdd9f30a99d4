<?php
/**
 * Writes each paid or placed order to the log exactly once.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * Hooks (see README.md, "Which hooks and why"):
 *
 * - `woocommerce_checkout_order_processed` (classic checkout) and
 *   `woocommerce_store_api_checkout_order_processed` (block checkout / Store API) run once per
 *   checkout, in the shopper's request, before payment: the visit figures are read from the
 *   shopper's cookies here and stored on the order, so a line written later (a payment
 *   gateway's callback, an admin marking a bank transfer paid) still carries them.
 * - `woocommerce_order_status_changed` into processing, completed or on-hold (filter
 *   `tap_order_logged_statuses`) and `woocommerce_payment_complete` write the line. Cash on
 *   delivery moves the order to processing, bank transfer and cheque to on-hold, card gateways
 *   call payment_complete(): every gateway passes through at least one of these.
 *
 * Status hooks repeat (processing, then completed) and payment_complete fires next to them, so
 * the order meta `_tap_logged` (written with update_meta_data() + save(), which works for both
 * post and HPOS order storage) makes the second and later calls write nothing. The thank-you
 * page writes nothing at all.
 */
class TAP_Order_Logger {

	const META_LOGGED      = '_tap_logged';
	const META_DURATION    = '_tap_duration_session';
	const META_PAGES       = '_tap_pages_viewed';
	const META_CAPTURED_AT = '_tap_session_captured_at';

	/**
	 * Log path resolver.
	 *
	 * @var TAP_Log_Path
	 */
	private $log_path;

	/**
	 * Log writer.
	 *
	 * @var TAP_Log_Writer
	 */
	private $writer;

	/**
	 * Visit tracker.
	 *
	 * @var TAP_Session_Tracker
	 */
	private $session;

	/**
	 * Problem reporter.
	 *
	 * @var TAP_Reporter
	 */
	private $reporter;

	/**
	 * Orders handled in this request (logged or found logged), keyed by id.
	 *
	 * @var array<int, bool>
	 */
	private $done = array();

	/**
	 * Orders whose visit figures were taken from this request's cookies, keyed by id.
	 *
	 * @var array<int, bool>
	 */
	private $captured_here = array();

	/**
	 * Constructor.
	 *
	 * @param TAP_Log_Path        $log_path Log path resolver.
	 * @param TAP_Log_Writer      $writer   Log writer.
	 * @param TAP_Session_Tracker $session  Visit tracker.
	 * @param TAP_Reporter        $reporter Problem reporter.
	 */
	public function __construct( TAP_Log_Path $log_path, TAP_Log_Writer $writer, TAP_Session_Tracker $session, TAP_Reporter $reporter ) {
		$this->log_path = $log_path;
		$this->writer   = $writer;
		$this->session  = $session;
		$this->reporter = $reporter;
	}

	/**
	 * Adds the WooCommerce hooks.
	 */
	public function register() {
		add_action( 'woocommerce_checkout_order_processed', array( $this, 'on_classic_checkout' ), 10, 3 );
		add_action( 'woocommerce_store_api_checkout_order_processed', array( $this, 'on_block_checkout' ), 10, 1 );
		add_action( 'woocommerce_order_status_changed', array( $this, 'on_status_changed' ), 10, 3 );
		add_action( 'woocommerce_payment_complete', array( $this, 'on_payment_complete' ), 10, 1 );
		add_action( 'template_redirect', array( $this, 'on_order_received_page' ), 15, 0 );
	}

	/**
	 * Statuses that mean "paid or placed".
	 *
	 * @return string[]
	 */
	public function logged_statuses() {
		$statuses = apply_filters( 'tap_order_logged_statuses', array( 'processing', 'completed', 'on-hold' ) );
		return array_map( 'strval', (array) $statuses );
	}

	/**
	 * Classic checkout: `woocommerce_checkout_order_processed( $order_id, $posted_data, $order )`.
	 *
	 * @param int           $order_id    Order id.
	 * @param array         $posted_data Checkout form data (unused).
	 * @param WC_Order|null $order       Order.
	 */
	public function on_classic_checkout( $order_id, $posted_data = array(), $order = null ) {
		$this->capture_session( $order instanceof WC_Order ? $order : $order_id );
	}

	/**
	 * Block checkout: `woocommerce_store_api_checkout_order_processed( $order )`.
	 *
	 * @param WC_Order $order Order.
	 */
	public function on_block_checkout( $order ) {
		$this->capture_session( $order );
	}

	/**
	 * `woocommerce_order_status_changed( $order_id, $from, $to )`.
	 *
	 * @param int    $order_id Order id.
	 * @param string $from     Previous status.
	 * @param string $to       New status.
	 */
	public function on_status_changed( $order_id, $from = '', $to = '' ) {
		if ( in_array( (string) $to, $this->logged_statuses(), true ) ) {
			$this->maybe_log( $order_id );
		}
	}

	/**
	 * `woocommerce_payment_complete( $order_id )`.
	 *
	 * @param int $order_id Order id.
	 */
	public function on_payment_complete( $order_id ) {
		$this->maybe_log( $order_id );
	}

	/**
	 * Stores the visit figures on the order at checkout. Never throws.
	 *
	 * @param WC_Order|int $order Order or id.
	 */
	public function capture_session( $order ) {
		try {
			if ( ! $order instanceof WC_Order ) {
				$order = wc_get_order( absint( $order ) );
			}
			if ( ! $order instanceof WC_Order || $order->get_meta( self::META_LOGGED ) ) {
				return;
			}
			$figures = $this->session->snapshot();
			$order->update_meta_data( self::META_DURATION, (string) $figures['duration_session'] );
			$order->update_meta_data( self::META_PAGES, (string) $figures['pages_viewed'] );
			$order->update_meta_data( self::META_CAPTURED_AT, (string) $this->session->now() );
			$order->save();
			$this->captured_here[ (int) $order->get_id() ] = true;
		} catch ( \Throwable $e ) {
			$this->reporter->error( 'Could not record the visit on the order: ' . $e->getMessage() );
		}
	}

	/**
	 * Writes the order's line unless it was written before. Never throws: a failure is reported
	 * and leaves the order unflagged, so the next paid/placed hook tries again.
	 *
	 * @param int $order_id Order id.
	 * @return bool Whether a line was written.
	 */
	public function maybe_log( $order_id ) {
		$order_id = absint( $order_id );
		if ( ! $order_id || isset( $this->done[ $order_id ] ) ) {
			return false;
		}
		try {
			// A fresh copy: the object a hook passes may predate another handler's save().
			$order = wc_get_order( $order_id );
			if ( ! $order instanceof WC_Order ) {
				return false;
			}
			if ( $order->get_meta( self::META_LOGGED ) ) {
				$this->done[ $order_id ] = true;
				return false;
			}
			$path = $this->log_path->resolve();
			if ( null === $path ) {
				return false; // Reported by the resolver.
			}
			$line = TAP_Order_Formatter::line( $order, $this->session_figures( $order ), wp_timezone() );

			$this->writer->append( $path, $line );
			$this->done[ $order_id ] = true;

			$order->update_meta_data( self::META_LOGGED, gmdate( 'Y-m-d\TH:i:s\Z' ) );
			$order->save();

			if ( isset( $this->captured_here[ $order_id ] ) ) {
				$this->session->reset(); // The purchase ends the visit; the next page starts a new one.
			}
			do_action( 'tap_order_logged', $order_id, $line );
			return true;
		} catch ( \Throwable $e ) {
			$this->reporter->error( sprintf( 'Order %d was not written to the orders log: %s', $order_id, $e->getMessage() ) );
			return false;
		}
	}

	/**
	 * On the thank-you page of an order placed in this visit, end the visit (covers gateways
	 * whose line is written in a server-to-server callback, where the shopper's cookies are out
	 * of reach). A reload finds a newer visit and changes nothing. Writes nothing to the log.
	 */
	public function on_order_received_page() {
		try {
			if ( ! function_exists( 'is_wc_endpoint_url' ) || ! is_wc_endpoint_url( 'order-received' ) ) {
				return;
			}
			$order = wc_get_order( absint( get_query_var( 'order-received' ) ) );
			if ( ! $order instanceof WC_Order ) {
				return;
			}
			$captured_at = (int) $order->get_meta( self::META_CAPTURED_AT );
			if ( $captured_at > 0 && $this->session->visit_started_before( $captured_at ) ) {
				$this->session->reset();
			}
		} catch ( \Throwable $e ) {
			$this->reporter->error( 'Could not end the visit on the thank-you page: ' . $e->getMessage() );
		}
	}

	/**
	 * The visit figures for an order: those stored at checkout; else, in a shopper's request,
	 * the current cookies; else (admin screen, cron, order created through the REST API) none.
	 *
	 * @param WC_Order $order Order.
	 * @return array{duration_session: int, pages_viewed: int}
	 */
	private function session_figures( $order ) {
		$duration = $order->get_meta( self::META_DURATION );
		if ( is_numeric( $duration ) ) {
			return array(
				'duration_session' => (int) $duration,
				'pages_viewed'     => TAP_Session_Tracker::pages_from( (string) $order->get_meta( self::META_PAGES ) ),
			);
		}
		$shopper_request = ! ( is_admin() && ! wp_doing_ajax() ) && ! wp_doing_cron();
		if ( $shopper_request ) {
			return $this->session->snapshot();
		}
		return array(
			'duration_session' => 0,
			'pages_viewed'     => 1,
		);
	}
}
