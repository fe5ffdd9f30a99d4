<?php
/**
 * Double of the Action Scheduler API WooCommerce ships (woocommerce/action-scheduler 3.8.2,
 * functions.php), with the same signatures and the behaviours the plugin relies on:
 *
 * - every function returns 0 (or nothing) while the data store is not initialised
 *   (`$GLOBALS['tap_as']['initialized'] = false`);
 * - `$unique` compares hook and group only (not the arguments);
 * - as_has_scheduled_action() matches pending or running actions, by arguments when given;
 * - an action runs as `do_action_ref_array( $hook, array_values( $args ) )`, fails when no
 *   callback is hooked, and a failed action is not retried.
 *
 * bootstrap.php loads it (WooCommerce is always there) unless TAP_TEST_WITHOUT_ACTION_SCHEDULER
 * is set in the environment.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

$GLOBALS['tap_as'] = array( 'initialized' => true, 'actions' => array(), 'next_id' => 1 );

function tap_test_reset_action_scheduler() {
	$GLOBALS['tap_as'] = array( 'initialized' => true, 'actions' => array(), 'next_id' => 1 );
}

function tap_test_as_create( $type, $timestamp, $hook, $args, $group, $unique, $priority ) {
	if ( ! $GLOBALS['tap_as']['initialized'] ) {
		return 0;
	}
	if ( $unique ) {
		foreach ( $GLOBALS['tap_as']['actions'] as $action ) {
			if ( $action['hook'] === $hook && $action['group'] === $group && in_array( $action['status'], array( 'pending', 'running' ), true ) ) {
				return 0;
			}
		}
	}
	$id                                 = $GLOBALS['tap_as']['next_id']++;
	$GLOBALS['tap_as']['actions'][ $id ] = array(
		'id'        => $id,
		'type'      => $type,
		'timestamp' => (int) $timestamp,
		'hook'      => $hook,
		'args'      => $args,
		'group'     => $group,
		'priority'  => $priority,
		'status'    => 'pending',
	);
	return $id;
}

function as_enqueue_async_action( $hook, $args = array(), $group = '', $unique = false, $priority = 10 ) {
	return tap_test_as_create( 'async', 0, $hook, $args, $group, $unique, $priority ); // due at once
}

function as_schedule_single_action( $timestamp, $hook, $args = array(), $group = '', $unique = false, $priority = 10 ) {
	return tap_test_as_create( 'single', $timestamp, $hook, $args, $group, $unique, $priority );
}

function as_has_scheduled_action( $hook, $args = null, $group = '' ) {
	if ( ! $GLOBALS['tap_as']['initialized'] ) {
		return false;
	}
	foreach ( $GLOBALS['tap_as']['actions'] as $action ) {
		if ( $action['hook'] === $hook && in_array( $action['status'], array( 'pending', 'running' ), true )
			&& ( '' === $group || $action['group'] === $group )
			&& ( null === $args || $action['args'] === $args ) ) {
			return true;
		}
	}
	return false;
}

function as_unschedule_all_actions( $hook, $args = array(), $group = '' ) {
	if ( ! $GLOBALS['tap_as']['initialized'] ) {
		return;
	}
	foreach ( $GLOBALS['tap_as']['actions'] as $id => $action ) {
		if ( $action['hook'] === $hook && 'pending' === $action['status'] ) {
			$GLOBALS['tap_as']['actions'][ $id ]['status'] = 'canceled';
		}
	}
}

/** The pending actions, optionally for one hook. */
function tap_test_pending_actions( $hook = null ) {
	return array_values( array_filter( $GLOBALS['tap_as']['actions'], static function ( $action ) use ( $hook ) {
		return 'pending' === $action['status'] && ( null === $hook || $action['hook'] === $hook );
	} ) );
}

/**
 * Runs one action as the queue runner does (ActionScheduler_Action::execute()): complete, or
 * failed when nothing is hooked or the callback throws.
 */
function tap_test_run_action( $id ) {
	$action = $GLOBALS['tap_as']['actions'][ $id ];
	$GLOBALS['tap_as']['actions'][ $id ]['status'] = 'running';
	try {
		if ( ! has_action( $action['hook'] ) ) {
			throw new Exception( 'no callbacks are registered for ' . $action['hook'] );
		}
		do_action_ref_array( $action['hook'], array_values( $action['args'] ) );
		$GLOBALS['tap_as']['actions'][ $id ]['status'] = 'complete';
	} catch ( Exception $e ) {
		$GLOBALS['tap_as']['actions'][ $id ]['status'] = 'failed';
	}
}

/** Runs the pending actions due at $now (oldest first); returns how many ran. */
function tap_test_run_due_actions( $now ) {
	$ran = 0;
	foreach ( tap_test_pending_actions() as $action ) {
		if ( $action['timestamp'] <= $now ) {
			tap_test_run_action( $action['id'] );
			++$ran;
		}
	}
	return $ran;
}
