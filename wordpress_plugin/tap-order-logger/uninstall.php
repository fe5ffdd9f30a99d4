<?php
/**
 * Removes the plugin's options when it is deleted from the Plugins screen.
 *
 * The orders log itself is left in place: it is data owned by the analytics pipeline, not
 * configuration, and Fluent Bit may not have read its last lines yet.
 *
 * @package TAP_Order_Logger
 */

defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

delete_option( 'tap_order_log_path' );

if ( is_multisite() ) {
	delete_site_option( 'tap_order_log_path' );
}
