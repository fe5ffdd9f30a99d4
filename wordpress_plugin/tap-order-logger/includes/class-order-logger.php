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
 *
 * The flag is set only after the line is in the file. When the log stays locked past the
 * deadline (setting `tap_order_log_lock_timeout`, 2 s by default) or the write fails, the hook
 * returns without the line and the order is queued (TAP_Retry_Queue): the queued action writes
 * it later, once, because it checks the same flag. An order whose personal data was erased
 * (TAP_Privacy) is never written again.
 */
class TAP_Order_Logger {

	const META_LOGGED      = '_tap_logged';
	const META_DURATION    = '_tap_duration_session';
	const META_PAGES       = '_tap_pages_viewed';
	const META_CAPTURED_AT = '_tap_session_captured_at';
	const META_ERASED      = '_tap_privacy_erasure_requested';

	const LOCK_TIMEOUT_OPTION = 'tap_order_log_lock_timeout';
	const MAX_LOCK_TIMEOUT    = 10.0;

	/** Outcomes of one attempt to write an order's line. */
	const WRITTEN  = 'written';
	const SKIPPED  = 'skipped';  // Already written, erased, or not an order.
	const FAILED   = 'failed';   // Cannot succeed as is (no product line, no safe path): reported.
	const DEFERRED = 'deferred'; // Lock timeout or write error: worth a retry.

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
	 * Orders queued for a retry in this request, keyed by id: the next hook of the same request
	 * (payment_complete() fires two) must not wait for the lock a second time.
	 *
	 * @var array<int, bool>
	 */
	private $deferred = array();

	/**
	 * Retry queue.
	 *
	 * @var TAP_Retry_Queue
	 */
	private $queue;

	/**
	 * Constructor.
	 *
	 * @param TAP_Log_Path         $log_path Log path resolver.
	 * @param TAP_Log_Writer       $writer   Log writer.
	 * @param TAP_Session_Tracker  $session  Visit tracker.
	 * @param TAP_Reporter         $reporter Problem reporter.
	 * @param TAP_Retry_Queue|null $queue    Retry queue.
	 */
	public function __construct( TAP_Log_Path $log_path, TAP_Log_Writer $writer, TAP_Session_Tracker $session, TAP_Reporter $reporter, $queue = null ) {
		$this->log_path = $log_path;
		$this->writer   = $writer;
		$this->session  = $session;
		$this->reporter = $reporter;
		$this->queue    = $queue instanceof TAP_Retry_Queue ? $queue : new TAP_Retry_Queue( $reporter );
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
		// On every request: Action Scheduler's runner and WP-Cron fire it in their own requests.
		add_action( TAP_Retry_Queue::HOOK, array( $this, 'run_retry' ), 10, 2 );
	}

	/**
	 * Seconds the checkout waits for the log's lock: option `tap_order_log_lock_timeout`
	 * (Settings > TAP Order Logger), then filter `tap_order_log_lock_timeout`; within [0, 10].
	 *
	 * @return float
	 */
	public static function lock_timeout() {
		$value = apply_filters( 'tap_order_log_lock_timeout', get_option( self::LOCK_TIMEOUT_OPTION, TAP_Log_Writer::DEFAULT_LOCK_TIMEOUT ) );
		return self::sanitize_lock_timeout( $value );
	}

	/**
	 * A lock timeout in seconds within [0, MAX_LOCK_TIMEOUT]; the default for anything else.
	 *
	 * @param mixed $value Value.
	 * @return float
	 */
	public static function sanitize_lock_timeout( $value ) {
		if ( ! is_numeric( $value ) || ! is_finite( (float) $value ) ) {
			return TAP_Log_Writer::DEFAULT_LOCK_TIMEOUT;
		}
		return max( 0.0, min( self::MAX_LOCK_TIMEOUT, round( (float) $value, 3 ) ) );
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
			if ( ! $order instanceof WC_Order || $order->get_meta( self::META_LOGGED ) || $order->get_meta( self::META_ERASED ) ) {
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
	 * Writes the order's line unless it was written before. Never throws and never waits longer
	 * than the lock deadline: when the line cannot be written now it is queued for a retry; other
	 * failures are reported and leave the order unflagged, so the next paid/placed hook tries
	 * again.
	 *
	 * @param int $order_id Order id.
	 * @return bool Whether a line was written.
	 */
	public function maybe_log( $order_id ) {
		$order_id = absint( $order_id );
		if ( ! $order_id || isset( $this->done[ $order_id ] ) || isset( $this->deferred[ $order_id ] ) ) {
			return false;
		}
		$outcome = $this->write_order( $order_id, false );
		if ( self::DEFERRED === $outcome ) {
			$this->deferred[ $order_id ] = true;
			$this->queue->schedule( $order_id, 1 );
		}
		return self::WRITTEN === $outcome;
	}

	/**
	 * The queued action `tap_order_logger_retry_write( $order_id, $attempt )`: writes the line
	 * unless it is there already (the flag), and queues the next attempt when it still cannot.
	 *
	 * @param int $order_id Order id.
	 * @param int $attempt  Attempt number, from 1.
	 * @return bool Whether a line was written.
	 */
	public function run_retry( $order_id, $attempt = 1 ) {
		$order_id = absint( $order_id );
		$attempt  = max( 1, (int) $attempt );
		if ( ! $order_id || isset( $this->done[ $order_id ] ) ) {
			return false;
		}
		unset( $this->deferred[ $order_id ] );
		$outcome = $this->write_order( $order_id, true );
		if ( self::DEFERRED === $outcome ) {
			if ( $attempt < TAP_Retry_Queue::MAX_ATTEMPTS ) {
				$this->queue->schedule( $order_id, $attempt + 1 );
			} else {
				$this->reporter->error( sprintf( 'Order %d is still not in the orders log after %d queued attempts; giving up. The next paid or placed hook for the order will try again.', $order_id, $attempt ) );
			}
		}
		return self::WRITTEN === $outcome;
	}

	/**
	 * One attempt to write an order's line. Never throws.
	 *
	 * @param int  $order_id   Order id.
	 * @param bool $background A queued retry (no shopper, no cookies) rather than a hook.
	 * @return string One of WRITTEN, SKIPPED, FAILED, DEFERRED.
	 */
	private function write_order( $order_id, $background ) {
		try {
			// A fresh copy: the object a hook passes may predate another handler's save().
			$order = wc_get_order( $order_id );
			if ( ! $order instanceof WC_Order ) {
				return self::SKIPPED;
			}
			if ( $order->get_meta( self::META_LOGGED ) || $order->get_meta( self::META_ERASED ) ) {
				$this->done[ $order_id ] = true;
				return self::SKIPPED;
			}
			$path = $this->log_path->resolve();
			if ( null === $path ) {
				return self::FAILED; // Reported by the resolver.
			}
			$line = TAP_Order_Formatter::line( $order, $this->session_figures( $order, $background ), wp_timezone() );
		} catch ( \Throwable $e ) {
			$this->reporter->error( sprintf( 'Order %d was not written to the orders log: %s', $order_id, $e->getMessage() ) );
			return self::FAILED;
		}

		try {
			$this->writer->append( $path, $line, self::lock_timeout() );
		} catch ( TAP_Log_Lock_Timeout $e ) {
			$this->reporter->warning( sprintf( 'Order %d was not written to the orders log yet: %s. It is queued for a retry.', $order_id, $e->getMessage() ) );
			return self::DEFERRED;
		} catch ( \Throwable $e ) {
			$this->reporter->error( sprintf( 'Order %d was not written to the orders log: %s. It is queued for a retry.', $order_id, $e->getMessage() ) );
			return self::DEFERRED;
		}

		// The line is in the file: only now may the once-only flag be set.
		$this->done[ $order_id ] = true;
		try {
			$order->update_meta_data( self::META_LOGGED, gmdate( 'Y-m-d\TH:i:s\Z' ) );
			$order->save();
			if ( ! $background && isset( $this->captured_here[ $order_id ] ) ) {
				$this->session->reset(); // The purchase ends the visit; the next page starts a new one.
			}
			do_action( 'tap_order_logged', $order_id, $line );
		} catch ( \Throwable $e ) {
			$this->reporter->error( sprintf( 'Order %d was written to the orders log, but flagging it failed (a later hook may write it again): %s', $order_id, $e->getMessage() ) );
		}
		return self::WRITTEN;
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
	 * the current cookies; else (admin screen, cron, a queued retry, order created through the
	 * REST API) none.
	 *
	 * @param WC_Order $order      Order.
	 * @param bool     $background A queued retry: whoever's cookies come with it, not the buyer's.
	 * @return array{duration_session: int, pages_viewed: int}
	 */
	private function session_figures( $order, $background = false ) {
		$duration = $order->get_meta( self::META_DURATION );
		if ( is_numeric( $duration ) ) {
			return array(
				'duration_session' => (int) $duration,
				'pages_viewed'     => TAP_Session_Tracker::pages_from( (string) $order->get_meta( self::META_PAGES ) ),
			);
		}
		$shopper_request = ! $background && ! ( is_admin() && ! wp_doing_ajax() ) && ! wp_doing_cron();
		if ( $shopper_request ) {
			return $this->session->snapshot();
		}
		return array(
			'duration_session' => 0,
			'pages_viewed'     => 1,
		);
	}
}
