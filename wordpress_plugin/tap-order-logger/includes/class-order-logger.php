<?php
/**
 * Writes each event in an order's life (paid, refunded, cancelled, failed) to the log exactly
 * once.
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
 *   shopper's cookies here and stored on the order, so every line written later (a payment
 *   gateway's callback, an admin marking a bank transfer paid, a refund) carries them.
 * - Paid: `woocommerce_order_status_changed` into processing or completed (filter
 *   `tap_order_logged_statuses`) and `woocommerce_payment_complete`. Money counts when it
 *   moves, as in WooCommerce Analytics: a bank transfer or cheque order waiting at on-hold is
 *   not paid and writes nothing until it is.
 * - Refunded: `woocommerce_refund_created( $refund_id, $args )` and
 *   `woocommerce_order_refunded( $order_id, $refund_id )`, both fired by wc_create_refund()
 *   (woocommerce includes/wc-order-functions.php) after the refund and the order are saved,
 *   one after the other, for refunds from the order screen, the REST API and gateways alike.
 *   Only for orders whose paid event is in the log: TAP never counted the others.
 * - Cancelled and failed: `woocommerce_order_status_changed` into cancelled or failed.
 *
 * Every hook can fire more than once (both refund hooks, status changes back and forth,
 * payment_complete next to its status change), so each event has its own once-only flag in
 * the order meta, written with update_meta_data() + save() (post and HPOS storage alike):
 * `_tap_logged` for paid (the 1.x flag: an order logged then is not written again),
 * `_tap_logged_cancelled`, `_tap_logged_failed` and `_tap_logged_refund_<refund id>`. The
 * thank-you page writes nothing at all.
 *
 * A flag is set only after the line is in the file. When the log stays locked past the
 * deadline (setting `tap_order_log_lock_timeout`, 2 s by default) or the write fails, the hook
 * returns without the line and the event is queued (TAP_Retry_Queue): the queued action writes
 * it later, once, because it checks the same flag. An order whose personal data was erased
 * (TAP_Privacy) is never written again.
 */
class TAP_Order_Logger {

	const META_LOGGED        = '_tap_logged'; // The paid event is in the log (name kept from 1.x).
	const META_LOGGED_PREFIX = '_tap_logged_'; // + cancelled, failed, refund_<refund id>.
	const META_DURATION      = '_tap_duration_session';
	const META_PAGES         = '_tap_pages_viewed';
	const META_CAPTURED_AT   = '_tap_session_captured_at';
	const META_ERASED        = '_tap_privacy_erasure_requested';

	const LOCK_TIMEOUT_OPTION = 'tap_order_log_lock_timeout';
	const MAX_LOCK_TIMEOUT    = 10.0;

	/** Outcomes of one attempt to write an event's line. */
	const WRITTEN  = 'written';
	const SKIPPED  = 'skipped';  // Already written, erased, not an order, or not TAP's to count.
	const FAILED   = 'failed';   // Cannot succeed as is (no product line, no safe path): reported.
	const DEFERRED = 'deferred'; // Lock timeout, write error, a paid event still queued: retry.

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
	 * Events handled in this request (written or found written), keyed by event id.
	 *
	 * @var array<string, bool>
	 */
	private $done = array();

	/**
	 * Orders whose visit figures were taken from this request's cookies, keyed by id.
	 *
	 * @var array<int, bool>
	 */
	private $captured_here = array();

	/**
	 * Events queued for a retry in this request, keyed by event id: the next hook of the same
	 * request (payment_complete() fires two, wc_create_refund() two) must not wait for the lock
	 * a second time.
	 *
	 * @var array<string, bool>
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
		add_action( 'woocommerce_refund_created', array( $this, 'on_refund_created' ), 10, 2 );
		add_action( 'woocommerce_order_refunded', array( $this, 'on_order_refunded' ), 10, 2 );
		add_action( 'template_redirect', array( $this, 'on_order_received_page' ), 15, 0 );
		// On every request: Action Scheduler's runner and WP-Cron fire it in their own requests.
		add_action( TAP_Retry_Queue::HOOK, array( $this, 'run_retry' ), 10, 5 );
	}

	/**
	 * The meta key of an event's once-only flag.
	 *
	 * @param string $type      Event type.
	 * @param int    $refund_id Refund id (refunded events).
	 * @return string
	 */
	public static function flag_key( $type, $refund_id = 0 ) {
		if ( TAP_Order_Formatter::PAID === $type ) {
			return self::META_LOGGED;
		}
		if ( TAP_Order_Formatter::REFUNDED === $type ) {
			return self::META_LOGGED_PREFIX . 'refund_' . (int) $refund_id;
		}
		return self::META_LOGGED_PREFIX . $type;
	}

	/**
	 * The once-only flags set on an order: meta key => when the line was written (UTC).
	 *
	 * @param WC_Order $order Order.
	 * @return array<string, string>
	 */
	public static function logged_flags( $order ) {
		$flags = array();
		$paid  = (string) $order->get_meta( self::META_LOGGED );
		if ( '' !== $paid ) {
			$flags[ self::META_LOGGED ] = $paid;
		}
		// Refund flags have one key per refund: found by prefix. WC_Meta_Data's key and value
		// are read through its __get() (the current values; get_data() has the saved ones).
		foreach ( (array) $order->get_meta_data() as $meta ) {
			$key   = is_object( $meta ) && isset( $meta->key ) ? (string) $meta->key : '';
			$value = is_object( $meta ) && isset( $meta->value ) && is_scalar( $meta->value ) ? (string) $meta->value : '';
			if ( 0 === strpos( $key, self::META_LOGGED_PREFIX ) && '' !== $value ) {
				$flags[ $key ] = $value;
			}
		}
		return $flags;
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
	 * Statuses that mean "paid": processing and completed, where WooCommerce sets the paid
	 * date. On-hold is not among them: a bank transfer or cheque order waits there unpaid.
	 *
	 * @return string[]
	 */
	public function logged_statuses() {
		$statuses = apply_filters( 'tap_order_logged_statuses', array( 'processing', 'completed' ) );
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
	 * `woocommerce_order_status_changed( $order_id, $from, $to )`: paid, cancelled or failed.
	 * Into refunded writes nothing: the refund hooks do (WooCommerce creates the refund itself
	 * when an admin sets the status, wc_order_fully_refunded()).
	 *
	 * @param int    $order_id Order id.
	 * @param string $from     Previous status.
	 * @param string $to       New status.
	 */
	public function on_status_changed( $order_id, $from = '', $to = '' ) {
		$to = (string) $to;
		if ( in_array( $to, $this->logged_statuses(), true ) ) {
			$this->maybe_log( $order_id );
		} elseif ( 'cancelled' === $to ) {
			$this->maybe_log( $order_id, TAP_Order_Formatter::CANCELLED );
		} elseif ( 'failed' === $to ) {
			$this->maybe_log( $order_id, TAP_Order_Formatter::FAILED );
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
	 * `woocommerce_refund_created( $refund_id, $args )`, fired by wc_create_refund() just before
	 * `woocommerce_order_refunded`: whichever runs first writes, the other finds the flag.
	 *
	 * @param int   $refund_id Refund id.
	 * @param array $args      wc_create_refund()'s arguments (order_id among them).
	 */
	public function on_refund_created( $refund_id, $args = array() ) {
		$order_id = is_array( $args ) && isset( $args['order_id'] ) ? absint( $args['order_id'] ) : 0;
		if ( ! $order_id ) {
			try {
				$refund   = wc_get_order( absint( $refund_id ) );
				$order_id = $refund instanceof WC_Order_Refund ? absint( $refund->get_parent_id() ) : 0;
			} catch ( \Throwable $e ) {
				$this->reporter->error( sprintf( 'Refund %d: could not find its order: %s', absint( $refund_id ), $e->getMessage() ) );
			}
		}
		$this->maybe_log( $order_id, TAP_Order_Formatter::REFUNDED, $refund_id );
	}

	/**
	 * `woocommerce_order_refunded( $order_id, $refund_id )`.
	 *
	 * @param int $order_id  Order id.
	 * @param int $refund_id Refund id.
	 */
	public function on_order_refunded( $order_id, $refund_id = 0 ) {
		$this->maybe_log( $order_id, TAP_Order_Formatter::REFUNDED, $refund_id );
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
	 * Writes an event's line unless it was written before. Never throws and never waits longer
	 * than the lock deadline: when the line cannot be written now it is queued for a retry;
	 * other failures are reported and leave the event unflagged, so the event's next hook tries
	 * again.
	 *
	 * @param int    $order_id  Order id.
	 * @param string $type      Event type: paid (default), refunded, cancelled, failed.
	 * @param int    $refund_id Refund id (refunded events).
	 * @return bool Whether a line was written.
	 */
	public function maybe_log( $order_id, $type = TAP_Order_Formatter::PAID, $refund_id = 0 ) {
		$order_id  = absint( $order_id );
		$refund_id = TAP_Order_Formatter::REFUNDED === $type ? absint( $refund_id ) : 0;
		if ( ! $order_id || ! in_array( $type, TAP_Order_Formatter::EVENT_TYPES, true ) || ( TAP_Order_Formatter::REFUNDED === $type && ! $refund_id ) ) {
			return false;
		}
		$event_id = TAP_Order_Formatter::event_id( $order_id, $type, $refund_id );
		if ( isset( $this->done[ $event_id ] ) || isset( $this->deferred[ $event_id ] ) ) {
			return false;
		}
		// WooCommerce keeps no date for a cancellation or failure: it is now, also for a retry.
		$occurred_at = in_array( $type, array( TAP_Order_Formatter::CANCELLED, TAP_Order_Formatter::FAILED ), true ) ? $this->session->now() : 0;
		$outcome     = $this->write_event( $order_id, $type, $refund_id, $occurred_at, false );
		if ( self::DEFERRED === $outcome ) {
			$this->deferred[ $event_id ] = true;
			$this->queue->schedule( $order_id, 1, $type, $refund_id, $occurred_at );
		}
		return self::WRITTEN === $outcome;
	}

	/**
	 * The queued action `tap_order_logger_retry_write( $order_id, $attempt, $type, $refund_id,
	 * $occurred_at )`: writes the event unless it is there already (its flag), and queues the
	 * next attempt when it still cannot. An action queued by 1.x passes two arguments: paid.
	 *
	 * @param int    $order_id    Order id.
	 * @param int    $attempt     Attempt number, from 1.
	 * @param string $type        Event type.
	 * @param int    $refund_id   Refund id (refunded events).
	 * @param int    $occurred_at Unix time of a cancelled or failed event, else 0.
	 * @return bool Whether a line was written.
	 */
	public function run_retry( $order_id, $attempt = 1, $type = TAP_Order_Formatter::PAID, $refund_id = 0, $occurred_at = 0 ) {
		$order_id  = absint( $order_id );
		$attempt   = max( 1, (int) $attempt );
		$type      = (string) $type;
		$refund_id = TAP_Order_Formatter::REFUNDED === $type ? absint( $refund_id ) : 0;
		if ( ! $order_id || ! in_array( $type, TAP_Order_Formatter::EVENT_TYPES, true ) || ( TAP_Order_Formatter::REFUNDED === $type && ! $refund_id ) ) {
			return false;
		}
		$event_id = TAP_Order_Formatter::event_id( $order_id, $type, $refund_id );
		if ( isset( $this->done[ $event_id ] ) ) {
			return false;
		}
		unset( $this->deferred[ $event_id ] );
		$outcome = $this->write_event( $order_id, $type, $refund_id, (int) $occurred_at, true );
		if ( self::DEFERRED === $outcome ) {
			if ( $attempt < TAP_Retry_Queue::MAX_ATTEMPTS ) {
				$this->queue->schedule( $order_id, $attempt + 1, $type, $refund_id, $occurred_at );
			} else {
				$this->reporter->error(
					sprintf( '%s is still not in the orders log after %d queued attempts; giving up.', self::describe( $order_id, $type, $refund_id ), $attempt )
					. ( TAP_Order_Formatter::PAID === $type ? ' The next paid hook for the order will try again.' : ' It is not retried again.' )
				);
			}
		}
		return self::WRITTEN === $outcome;
	}

	/**
	 * One attempt to write an event's line. Never throws.
	 *
	 * @param int    $order_id    Order id.
	 * @param string $type        Event type.
	 * @param int    $refund_id   Refund id (refunded events).
	 * @param int    $occurred_at Unix time of a cancelled or failed event, else 0.
	 * @param bool   $background  A queued retry (no shopper, no cookies) rather than a hook.
	 * @return string One of WRITTEN, SKIPPED, FAILED, DEFERRED.
	 */
	private function write_event( $order_id, $type, $refund_id, $occurred_at, $background ) {
		$event_id = TAP_Order_Formatter::event_id( $order_id, $type, $refund_id );
		$what     = self::describe( $order_id, $type, $refund_id );
		try {
			// A fresh copy: the object a hook passes may predate another handler's save().
			$order = wc_get_order( $order_id );
			if ( ! $order instanceof WC_Order ) {
				return self::SKIPPED;
			}
			if ( $order->get_meta( self::flag_key( $type, $refund_id ) ) || $order->get_meta( self::META_ERASED ) ) {
				$this->done[ $event_id ] = true;
				return self::SKIPPED;
			}
			$refund = null;
			if ( TAP_Order_Formatter::REFUNDED === $type ) {
				if ( ! $order->get_meta( self::META_LOGGED ) ) {
					// Money TAP never counted is not taken back: an order paid before the plugin
					// ran, or never paid. A paid event still queued is waited for.
					if ( $this->queue->is_queued( $order_id, TAP_Order_Formatter::PAID ) ) {
						return self::DEFERRED;
					}
					$this->done[ $event_id ] = true;
					return self::SKIPPED;
				}
				$refund = wc_get_order( $refund_id );
				if ( ! $refund instanceof WC_Order_Refund || (int) $refund->get_parent_id() !== $order_id ) {
					$this->reporter->warning( sprintf( '%s was not written to the orders log: the refund no longer exists.', $what ) );
					$this->done[ $event_id ] = true;
					return self::SKIPPED;
				}
			}
			$path = $this->log_path->resolve();
			if ( null === $path ) {
				return self::FAILED; // Reported by the resolver.
			}
			$session = $this->session_figures( $order, $type, $background );
			$line    = TAP_Order_Formatter::line(
				$order,
				$session['figures'],
				wp_timezone(),
				array(
					'type'   => $type,
					'refund' => $refund,
					'now'    => $occurred_at > 0 ? $occurred_at : $this->session->now(),
				)
			);
		} catch ( \Throwable $e ) {
			$this->reporter->error( sprintf( '%s was not written to the orders log: %s', $what, $e->getMessage() ) );
			return self::FAILED;
		}

		try {
			$this->writer->append( $path, $line, self::lock_timeout() );
		} catch ( TAP_Log_Lock_Timeout $e ) {
			$this->reporter->warning( sprintf( '%s was not written to the orders log yet: %s. It is queued for a retry.', $what, $e->getMessage() ) );
			return self::DEFERRED;
		} catch ( \Throwable $e ) {
			$this->reporter->error( sprintf( '%s was not written to the orders log: %s. It is queued for a retry.', $what, $e->getMessage() ) );
			return self::DEFERRED;
		}

		// The line is in the file: only now may the once-only flag be set.
		$this->done[ $event_id ] = true;
		try {
			$order->update_meta_data( self::flag_key( $type, $refund_id ), gmdate( 'Y-m-d\TH:i:s\Z', $this->session->now() ) );
			if ( $session['from_cookies'] ) {
				// Kept with the order, so its later events carry the same visit.
				$order->update_meta_data( self::META_DURATION, (string) $session['figures']['duration_session'] );
				$order->update_meta_data( self::META_PAGES, (string) $session['figures']['pages_viewed'] );
			}
			$order->save();
			if ( TAP_Order_Formatter::PAID === $type && ! $background && isset( $this->captured_here[ $order_id ] ) ) {
				$this->session->reset(); // The purchase ends the visit; the next page starts a new one.
			}
			do_action( 'tap_order_logged', $order_id, $line, $event_id );
		} catch ( \Throwable $e ) {
			$this->reporter->error( sprintf( '%s was written to the orders log, but flagging it failed (a later hook may write it again): %s', $what, $e->getMessage() ) );
		}
		return self::WRITTEN;
	}

	/**
	 * An event, for messages: "Order 12" (its paid event), "Order 12's cancelled event",
	 * "Refund 40 of order 12".
	 *
	 * @param int    $order_id  Order id.
	 * @param string $type      Event type.
	 * @param int    $refund_id Refund id.
	 * @return string
	 */
	private static function describe( $order_id, $type, $refund_id ) {
		if ( TAP_Order_Formatter::PAID === $type ) {
			return sprintf( 'Order %d', $order_id );
		}
		if ( TAP_Order_Formatter::REFUNDED === $type ) {
			return sprintf( 'Refund %d of order %d', $refund_id, $order_id );
		}
		return sprintf( 'Order %d\'s %s event', $order_id, $type );
	}

	/**
	 * On the thank-you page of an order placed in this visit, end the visit (covers gateways
	 * whose paid line is written in a server-to-server callback, where the shopper's cookies are
	 * out of reach, and bank transfers, paid days later). A reload finds a newer visit and
	 * changes nothing. Writes nothing to the log.
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
	 * The visit figures for an order's event: those stored at checkout; else, for a paid event
	 * in a shopper's request, the current cookies (then stored with the flag, so later events
	 * agree); else (admin screen, cron, a queued retry, an order created through the REST API,
	 * any later event) none.
	 *
	 * @param WC_Order $order      Order.
	 * @param string   $type       Event type.
	 * @param bool     $background A queued retry: whoever's cookies come with it, not the buyer's.
	 * @return array{figures: array{duration_session: int, pages_viewed: int}, from_cookies: bool}
	 */
	private function session_figures( $order, $type, $background = false ) {
		$duration = $order->get_meta( self::META_DURATION );
		if ( is_numeric( $duration ) ) {
			return array(
				'figures'      => array(
					'duration_session' => (int) $duration,
					'pages_viewed'     => TAP_Session_Tracker::pages_from( (string) $order->get_meta( self::META_PAGES ) ),
				),
				'from_cookies' => false,
			);
		}
		$shopper_request = TAP_Order_Formatter::PAID === $type && ! $background && ! ( is_admin() && ! wp_doing_ajax() ) && ! wp_doing_cron();
		if ( $shopper_request ) {
			return array(
				'figures'      => $this->session->snapshot(),
				'from_cookies' => true,
			);
		}
		return array(
			'figures'      => array(
				'duration_session' => 0,
				'pages_viewed'     => 1,
			),
			'from_cookies' => false,
		);
	}
}
