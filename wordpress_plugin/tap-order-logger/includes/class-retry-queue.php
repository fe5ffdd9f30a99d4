<?php
/**
 * Queues an order event whose line could not be written now, for a background retry.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * Schedules the `tap_order_logger_retry_write( $order_id, $attempt, $event_type, $refund_id,
 * $occurred_at )` action through Action Scheduler, which WooCommerce ships, and falls back to
 * WP-Cron when Action Scheduler is absent or not initialised yet. The arguments name the event
 * (order, type, refund) so the action writes that event and checks that event's once-only flag;
 * `$occurred_at` keeps the time of a cancellation or failure, which WooCommerce does not record
 * (0 for paid and refunded events, whose dates WooCommerce stores). Actions queued by plugin
 * 1.x carry only `( $order_id, $attempt )` and mean a paid event.
 *
 * Facts from the upstream sources this relies on:
 *
 * - `as_enqueue_async_action( $hook, $args = array(), $group = '', $unique = false, $priority = 10 )`
 *   and `as_schedule_single_action( $timestamp, $hook, $args = array(), $group = '', $unique = false, $priority = 10 )`
 *   return the action id, or 0 when the data store is not initialised yet
 *   (woocommerce/action-scheduler 3.8.2, functions.php:19-22 and :69-72).
 * - Their `$unique` compares hook and group only, not the arguments
 *   (functions.php:14; classes/data-stores/ActionScheduler_DBStore.php:171-195), so one
 *   unique action per hook would swallow every order but the first: duplicates are avoided
 *   with `as_has_scheduled_action( $hook, $args, $group )` (functions.php:396, since 3.3.0).
 * - The action runs `do_action_ref_array( $hook, array_values( $args ) )`
 *   (classes/actions/ActionScheduler_Action.php:67; it throws when no callback is hooked, lines
 *   57-65, so the hook is added on every request), and a failed action is not retried by
 *   Action Scheduler: a retry that fails again schedules the next attempt itself, with backoff.
 * - `wp_schedule_single_event( $timestamp, $hook, $args = array(), $wp_error = false )` returns
 *   false for an identical event within ten minutes (WordPress 7.1 wp-includes/cron.php:48 and
 *   :117-150); wp-cron.php:191 runs it with `do_action_ref_array( $hook, $v['args'] )`.
 */
class TAP_Retry_Queue {

	const HOOK  = 'tap_order_logger_retry_write';
	const GROUP = 'tap-order-logger';

	/** Attempts before giving up (the first one is the queued retry after the hook's try). */
	const MAX_ATTEMPTS = 12;

	/** Delay before attempt 2, doubled for each later one, capped at MAX_DELAY (seconds). */
	const FIRST_DELAY = 30;
	const MAX_DELAY   = 3600;

	/**
	 * Problem reporter.
	 *
	 * @var TAP_Reporter
	 */
	private $reporter;

	/**
	 * Returns the current Unix time.
	 *
	 * @var callable
	 */
	private $clock;

	/**
	 * Constructor.
	 *
	 * @param TAP_Reporter  $reporter Problem reporter.
	 * @param callable|null $clock    Returns the current Unix time (tests pass their own).
	 */
	public function __construct( TAP_Reporter $reporter, $clock = null ) {
		$this->reporter = $reporter;
		$this->clock    = is_callable( $clock ) ? $clock : 'time';
	}

	/**
	 * Seconds to wait before an attempt: 0 for the first (as soon as possible), then 30 s,
	 * 60 s, 120 s... up to an hour.
	 *
	 * @param int $attempt Attempt number, from 1.
	 * @return int
	 */
	public static function delay( $attempt ) {
		$attempt = max( 1, (int) $attempt );
		if ( 1 === $attempt ) {
			return 0;
		}
		return (int) min( self::MAX_DELAY, self::FIRST_DELAY * ( 2 ** min( 20, $attempt - 2 ) ) );
	}

	/**
	 * The action's arguments for one attempt at one event.
	 *
	 * @param int    $order_id    Order id.
	 * @param int    $attempt     Attempt number, from 1.
	 * @param string $type        Event type.
	 * @param int    $refund_id   Refund id (refunded events), else 0.
	 * @param int    $occurred_at Unix time of a cancelled or failed event, else 0.
	 * @return array
	 */
	public static function args( $order_id, $attempt, $type = 'paid', $refund_id = 0, $occurred_at = 0 ) {
		return array( (int) $order_id, max( 1, (int) $attempt ), (string) $type, (int) $refund_id, (int) $occurred_at );
	}

	/**
	 * Queues an attempt to write an order event's line.
	 *
	 * @param int    $order_id    Order id.
	 * @param int    $attempt     Attempt number, from 1.
	 * @param string $type        Event type (paid, refunded, cancelled, failed).
	 * @param int    $refund_id   Refund id (refunded events), else 0.
	 * @param int    $occurred_at Unix time of a cancelled or failed event, else 0.
	 * @return string|false 'action-scheduler' or 'wp-cron' (queued, or already queued), false.
	 */
	public function schedule( $order_id, $attempt = 1, $type = 'paid', $refund_id = 0, $occurred_at = 0 ) {
		$args = self::args( $order_id, $attempt, $type, $refund_id, $occurred_at );
		$when = (int) call_user_func( $this->clock ) + self::delay( $attempt );

		if ( function_exists( 'as_enqueue_async_action' ) && function_exists( 'as_schedule_single_action' ) ) {
			if ( function_exists( 'as_has_scheduled_action' ) && as_has_scheduled_action( self::HOOK, $args, self::GROUP ) ) {
				return 'action-scheduler';
			}
			$id = 0 === self::delay( $attempt )
				? as_enqueue_async_action( self::HOOK, $args, self::GROUP )
				: as_schedule_single_action( $when, self::HOOK, $args, self::GROUP );
			if ( is_int( $id ) && $id > 0 ) {
				return 'action-scheduler';
			}
		}

		if ( function_exists( 'wp_schedule_single_event' ) ) {
			if ( function_exists( 'wp_next_scheduled' ) && false !== wp_next_scheduled( self::HOOK, $args ) ) {
				return 'wp-cron';
			}
			if ( true === wp_schedule_single_event( $when, self::HOOK, $args ) ) {
				return 'wp-cron';
			}
		}

		$this->reporter->error( sprintf( 'Order %d: the %s event could not be queued for a retry (neither Action Scheduler nor WP-Cron accepted it).', (int) $order_id, $type ) );
		return false;
	}

	/**
	 * Whether an attempt at the event is still waiting in either queue, whatever its attempt
	 * number. A refund waits for its order's paid event this way. Up to MAX_ATTEMPTS look-ups
	 * per queue (Action Scheduler matches arguments exactly): asked on that rare path only.
	 *
	 * @param int    $order_id  Order id.
	 * @param string $type      Event type.
	 * @param int    $refund_id Refund id (refunded events), else 0.
	 * @return bool
	 */
	public function is_queued( $order_id, $type = 'paid', $refund_id = 0 ) {
		for ( $attempt = 1; $attempt <= self::MAX_ATTEMPTS; $attempt++ ) {
			$args = self::args( $order_id, $attempt, $type, $refund_id );
			if ( function_exists( 'as_has_scheduled_action' ) && as_has_scheduled_action( self::HOOK, $args, self::GROUP ) ) {
				return true;
			}
			if ( function_exists( 'wp_next_scheduled' ) && false !== wp_next_scheduled( self::HOOK, $args ) ) {
				return true;
			}
		}
		return false;
	}
}
