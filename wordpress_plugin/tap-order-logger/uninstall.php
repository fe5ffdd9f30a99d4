<?php
/**
 * Removes the plugin's options and its queued retries when it is deleted from the Plugins
 * screen.
 *
 * The orders log itself is left in place: it is data owned by the analytics pipeline, not
 * configuration, and Fluent Bit may not have read its last lines yet.
 *
 * @package TAP_Order_Logger
 */

defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

foreach ( array( 'tap_order_log_path', 'tap_order_log_lock_timeout' ) as $tap_order_logger_option ) {
	delete_option( $tap_order_logger_option );
	if ( is_multisite() ) {
		delete_site_option( $tap_order_logger_option );
	}
}

// Retries still queued would find no callback once the plugin's files are gone. The hook alone,
// no group: with empty args and a group Action Scheduler would match only actions without
// arguments (action-scheduler 3.8.2 functions.php:309-326 and :275-277).
if ( function_exists( 'as_unschedule_all_actions' ) ) {
	as_unschedule_all_actions( 'tap_order_logger_retry_write' );
}
if ( function_exists( 'wp_unschedule_hook' ) ) {
	wp_unschedule_hook( 'tap_order_logger_retry_write' );
}
