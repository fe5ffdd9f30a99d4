<?php
/**
 * The orders log stayed locked past the deadline.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * Thrown by TAP_Log_Writer when another process holds the log's lock for longer than the
 * configured deadline. Nothing was written; the caller queues the line for later.
 */
class TAP_Log_Lock_Timeout extends RuntimeException {}
